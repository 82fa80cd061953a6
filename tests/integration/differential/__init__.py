"""Differential test of corrald against Apache ZooKeeper: see README.md."""
