"""The lab: hosts reached over SSH, the namespace lab the self-tests build, the pool."""
