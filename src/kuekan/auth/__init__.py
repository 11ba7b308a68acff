"""KueKan JWTs, LINE ID token verification and role guards."""
