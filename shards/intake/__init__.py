"""What goes into a dataset: probing a stored image, the admission rules, packing a folder as it is."""
