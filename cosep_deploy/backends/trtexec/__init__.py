"""NVIDIA's trtexec as a backend: ``command`` builds and runs its command lines, ``parse`` reads its outputs
(version banner, ``--exportTimes``, ``--exportProfile``, ``--exportLayerInfo``, the summary)."""
