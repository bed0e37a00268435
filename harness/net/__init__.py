"""The network on the wire: a namespace per test, scapy probes, announce and gap analysis."""
