-- Why a refresh-token family was revoked: `logout` (the user signed out) or `reuse` (a spent
-- token was presented again). A refresh after logout then says the session ended instead of
-- reporting a theft, and access tokens (which name their family) stop working at once.
ALTER TABLE refresh_tokens ADD COLUMN revoked_reason TEXT;
