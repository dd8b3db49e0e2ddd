"""Results: the typed result model (the contract between measuring and everything downstream), its migrations
from older versions, the one reader and iterator, the writer, and a pandas view."""
