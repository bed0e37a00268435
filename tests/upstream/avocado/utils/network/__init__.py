"""avocado.utils.network: ``ports`` only."""
