package builder

import (
	"errors"

	nettypes "go.podman.io/common/libnetwork/types"
)

// errNoNetworkBackend is returned by every network operation of hostNetwork.
var errNoNetworkBackend = errors.New("agentforge builds use chroot isolation and the host's network: no container network backend is configured")

// hostNetwork is the network "backend" handed to buildah for chroot builds.
//
// With chroot isolation a RUN step shares the host's network namespace, so
// buildah never sets up a container network. Left to itself, buildah would
// still look for a backend (netavark) on every pull and build, and fail on
// machines that do not have one. Handing it this value skips that look-up;
// any attempt to actually configure a network fails with errNoNetworkBackend
// instead of silently doing something else.
type hostNetwork struct{}

var _ nettypes.ContainerNetwork = hostNetwork{}

func (hostNetwork) NetworkCreate(nettypes.Network, *nettypes.NetworkCreateOptions) (nettypes.Network, error) {
	return nettypes.Network{}, errNoNetworkBackend
}
func (hostNetwork) NetworkUpdate(string, nettypes.NetworkUpdateOptions) error {
	return errNoNetworkBackend
}
func (hostNetwork) NetworkRemove(string) error { return errNoNetworkBackend }
func (hostNetwork) NetworkList(...nettypes.FilterFunc) ([]nettypes.Network, error) {
	return nil, nil
}
func (hostNetwork) NetworkInspect(string) (nettypes.Network, error) {
	return nettypes.Network{}, errNoNetworkBackend
}
func (hostNetwork) Setup(string, nettypes.SetupOptions) (map[string]nettypes.StatusBlock, error) {
	return nil, errNoNetworkBackend
}
func (hostNetwork) Teardown(string, nettypes.TeardownOptions) error { return errNoNetworkBackend }
func (hostNetwork) RunInRootlessNetns(func() error) error           { return errNoNetworkBackend }
func (hostNetwork) RootlessNetnsInfo() (*nettypes.RootlessNetnsInfo, error) {
	return nil, errNoNetworkBackend
}
func (hostNetwork) Drivers() []string          { return nil }
func (hostNetwork) DefaultNetworkName() string { return "" }
func (hostNetwork) NetworkInfo() nettypes.NetworkInfo {
	return nettypes.NetworkInfo{Backend: "none"}
}
