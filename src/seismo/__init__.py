"""seismo: real-time monitoring and analytics in one process."""

from seismo.client import AsyncClient, Client
from seismo.config import Settings, load_settings

__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "Settings", "__version__", "load_settings"]
