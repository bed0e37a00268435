"""avocado.utils: only the helpers QEMU's migration tests use are real."""
