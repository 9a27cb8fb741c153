"""The ``cosep-deploy`` CLI (click): one module per command."""
