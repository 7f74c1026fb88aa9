"""transfer-runner: move direct email-security customers under a reseller, safely and in bulk."""

__version__ = "0.1.0"
__all__ = ["__version__"]
