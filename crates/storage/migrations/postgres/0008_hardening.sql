-- Why a refresh-token family was revoked: `logout` (the user signed out) or `reuse` (a spent
-- token was presented again). A refresh after logout then says the session ended instead of
-- reporting a theft, and access tokens (which name their family) stop working at once.
ALTER TABLE refresh_tokens ADD COLUMN revoked_reason TEXT;

-- The operator's monthly credits of a plan for standalone accounts (sign-ups cost nothing,
-- so an open installation may give its free plan less to them); NULL: the plan's credits.
ALTER TABLE plans ADD COLUMN standalone_monthly_credits BIGINT CHECK (standalone_monthly_credits >= 0);
