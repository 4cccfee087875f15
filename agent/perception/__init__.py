"""Objects from RGB-D pixels and the success detectors."""
