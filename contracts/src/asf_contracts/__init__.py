"""Event contracts of ASF Samverkan: the envelope, each service's events and the broker topology.

Everything a consumer needs to understand a message lives here, and nothing else does.
"""

from asf_contracts.envelope import Envelope, routing_key
from asf_contracts.topology import EXCHANGE

__all__ = ["EXCHANGE", "Envelope", "routing_key"]
