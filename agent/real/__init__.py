"""The real-robot path: a RealSense camera (live or a recording), an arm driver (a PyBullet twin or
a vendor SDK), a camera-to-base calibration, and the shadow dry run that gates every real run."""
