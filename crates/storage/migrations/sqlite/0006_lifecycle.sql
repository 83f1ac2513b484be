-- Data lifecycle: the retention task and account deletion. `accounts.deactivated_at` (the
-- instant an account became inactive, which starts its deletion grace period) exists since
-- 0001; these indexes let the periodic passes find their rows without scanning whole tables.

-- Retention: finished jobs by status and age, publish logs by age, deactivated accounts.
CREATE INDEX jobs_finished ON jobs (status, finished_at);
CREATE INDEX publish_logs_applied ON publish_logs (applied_at);
CREATE INDEX accounts_deactivated ON accounts (deactivated_at) WHERE deactivated_at IS NOT NULL;

-- Account deletion (and the cascades of `accounts`): the growing tables keyed by account
-- that had no index starting with `account_id`.
CREATE INDEX job_items_account ON job_items (account_id);
CREATE INDEX sync_requests_account ON sync_requests (account_id);
CREATE INDEX sync_batches_account ON sync_batches (account_id);
CREATE INDEX webhook_events_account ON webhook_events (account_id);
