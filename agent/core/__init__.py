"""The control loop: executor, session, events, trace, report, homing, policies."""
