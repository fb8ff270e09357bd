"""pipewarden: keeps the customer data behind personalized email honest."""

__version__ = "0.1.0"
