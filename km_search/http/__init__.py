"""The HTTP edge, the only FastAPI code: the app, its schemas and dependencies, auth, one router per area."""
