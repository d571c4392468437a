// Package remote is how agentforge reaches registries: the one registry
// configuration (Registries: auth file, CA, insecure hosts, pull mirrors,
// retries), opened once into Hosts, which hands c/image its system
// contexts and keeps one Client per repository: what c/image does not
// speak (the OCI 1.1 referrers API), and everything a copy sends and
// reads many of (manifests, blobs, mounts) on one connection pool and one
// token per repository, instead of a c/image client (and its ping and
// token) per call, with nothing asked twice (a blob goes in a POST and
// one PUT; a blob read that breaks goes on from where it stopped, an
// upload from the byte the registry has); the HTTP error every such call
// returns, with its verdict (Error.Temporary); and the retry policy that
// retries only what is known to be temporary.
//
// Credentials come from the auth file and credential helpers, are sent
// only where the rules on Client say, and are recorded in the caller's
// redact.Set so that nothing prints them.
package remote
