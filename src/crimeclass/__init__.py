"""crimeclass: Chicago crime records into trustworthy statistics and index-offense classifiers."""

__version__ = "0.1.0"
