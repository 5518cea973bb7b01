"""claudine's engine: queue, autoscaler, agent supervisor, store and recovery."""

__version__ = "0.1.0"
