"""Data tables the protocol package ships (generated, checked in)."""
