"""zeronode: a private cloud for the edge that speaks the AWS APIs."""

__version__ = "0.1.0"
