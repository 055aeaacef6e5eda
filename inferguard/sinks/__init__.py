"""Sinks: where incident events go (one module each). Every sink implements
:class:`inferguard.protocols.Sink`; :mod:`inferguard.runtime.build` decides which ones run."""
