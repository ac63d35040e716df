"""Guided labs (walkthroughs from ``fixtures/labs``), a learner's progress, and interview practice."""
