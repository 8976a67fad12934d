"""Certifying several callbacks as one chain (``--raycallbacks-chain``).

* :mod:`.plugin`: :class:`~.plugin.ChainPlugin`, registered by the kit, which gathers the
  chain item's outcome for the summary and the certificate;
* :mod:`.item`: the chain item itself, which runs :func:`conformance.chain.certify_chain`;
* :mod:`.text`: its verdict in words.
"""
