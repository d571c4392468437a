package hudson

// Stub of hudson.Util (Jenkins core), the two helpers the Kubernetes
// plugin's setters use, as in jenkinsci/jenkins
// core/src/main/java/hudson/Util.java (fixEmpty; fixEmptyAndTrim since
// 1.154). String.trim() removes every char <= U+0020 at both ends, control
// characters included, and nothing else (not U+00A0).
class Util {
    static String fixEmpty(String s) {
        if (s == null || s.isEmpty()) {
            return null
        }
        return s
    }

    static String fixEmptyAndTrim(String s) {
        if (s == null) {
            return null
        }
        return fixEmpty(s.trim())
    }
}
