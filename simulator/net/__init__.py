"""The simulator on the wire: tap devices, a small network stack per simulated NIC, the
guest's network configuration and heartbeat, and the self-announce after a migration."""
