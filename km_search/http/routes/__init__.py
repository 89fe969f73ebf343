"""One APIRouter per area of the API, each built from the settings (query limits) and the service."""
