"""Real network endpoints backed by simulator state: TR-069 ACS and CPEs, SNMP OLT agents."""

__all__: list[str] = []
