"""Training data of the NED manipulator: MEAD's layout, clip selection and 10-frame windows."""
