-- Billing: the Stripe objects of standalone accounts, and the indexes the billing tasks
-- read by (unfinished webhook deliveries, canceled periods that end).
ALTER TABLE accounts ADD COLUMN stripe_customer_id TEXT;
ALTER TABLE accounts ADD COLUMN stripe_subscription_id TEXT;
CREATE UNIQUE INDEX accounts_stripe_customer ON accounts (stripe_customer_id)
    WHERE stripe_customer_id IS NOT NULL;
CREATE INDEX accounts_period_end ON accounts (period_end) WHERE cancel_at_period_end;
CREATE INDEX webhook_events_unprocessed ON webhook_events (provider, received_at)
    WHERE processed_at IS NULL;
