import { useCallback, useEffect, useRef, useState } from 'react';
import { useSearchParams } from 'react-router-dom';
import {
  Badge,
  Box,
  Button,
  Card,
  Heading,
  LinearProgressBar,
  Loader,
  SectionHelper,
  Table,
  Text,
} from '@wix/design-system';
import { ApiError, api, type Billing, type LedgerEntry, type PlanInfo } from '../api';
import { useMe } from '../meContext';

const REASON_LABEL: Record<LedgerEntry['reason'], string> = {
  monthly_grant: 'Monthly credits',
  plan_change: 'Plan change',
  reserve: 'Job started',
  refund: 'Refund',
  adjustment: 'Adjustment',
};

function formatDate(value: string): string {
  // Reset dates are calendar days (YYYY-MM-DD): shown as that day, whatever the time zone.
  const date = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T12:00:00`) : new Date(value);
  return date.toLocaleDateString(undefined, { year: 'numeric', month: 'long', day: 'numeric' });
}

function formatPrice(cents: number): string {
  if (cents === 0) return 'Free';
  return `${new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD' }).format(cents / 100)} / month`;
}

/** What an entry of the ledger is about, in words. */
function describe(entry: LedgerEntry): string {
  const [kind, id] = entry.reference.split(':');
  if (entry.reason === 'reserve' && kind === 'job') return `Job ${id.slice(0, 8)}`;
  if (entry.reason === 'reserve' && kind === 'retry') return `Retry of job ${id.slice(0, 8)}`;
  if (entry.reason === 'refund' && kind === 'cancel') return `Canceled job ${id.slice(0, 8)}`;
  if (entry.reason === 'refund') return 'Items that failed or were canceled';
  if (entry.reason === 'monthly_grant') return kind === 'period' ? `Period from ${formatDate(id)}` : 'New period';
  if (entry.reason === 'plan_change') {
    if (kind === 'period_end') return 'Canceled plan ended';
    if (kind === 'wix-sync' || kind === 'stripe-sync') return 'Corrected from the billing system';
    return 'Subscription updated';
  }
  return entry.reference;
}

export default function BillingPage() {
  const { reload: reloadMe } = useMe();
  // The header's credits follow a sync; the frame's reload is not a reason to sync again.
  const reloadMeRef = useRef(reloadMe);
  reloadMeRef.current = reloadMe;
  const [params] = useSearchParams();
  const returnedFromUpgrade = params.get('upgrade') === 'success';
  const [billing, setBilling] = useState<Billing | null>(null);
  const [history, setHistory] = useState<LedgerEntry[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [syncState, setSyncState] = useState<'syncing' | 'done' | ApiError>('syncing');
  const [busyPlan, setBusyPlan] = useState<string | null>(null);
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);

  const show = useCallback((loaded: Billing) => {
    setBilling(loaded);
    setHistory(loaded.history.items);
    setCursor(loaded.history.nextCursor);
  }, []);

  useEffect(() => {
    let cancelled = false;
    api
      .billing()
      .then((loaded) => !cancelled && show(loaded))
      .catch((err: unknown) => !cancelled && setError(asApiError(err)));
    // The billing system is the truth: re-read it on every visit (the repair when a
    // webhook was lost), and after returning from an upgrade.
    api
      .syncCredits()
      .then((synced) => {
        if (cancelled) return;
        show(synced);
        setSyncState('done');
        reloadMeRef.current();
      })
      .catch((err: unknown) => !cancelled && setSyncState(asApiError(err)));
    return () => {
      cancelled = true;
    };
  }, [show, returnedFromUpgrade]);

  async function loadMore() {
    if (!cursor) return;
    setLoadingMore(true);
    try {
      const page = await api.billingHistory(cursor);
      setHistory((current) => [...current, ...page.items]);
      setCursor(page.nextCursor);
    } catch (err) {
      setActionError(asApiError(err));
    } finally {
      setLoadingMore(false);
    }
  }

  async function checkout(plan: PlanInfo) {
    setBusyPlan(plan.id);
    setActionError(null);
    try {
      const { url } = await api.checkout(plan.id);
      window.location.assign(url);
    } catch (err) {
      setActionError(asApiError(err));
      setBusyPlan(null);
    }
  }

  async function manageSubscription() {
    setBusyPlan('portal');
    setActionError(null);
    try {
      const { url } = await api.billingPortal();
      window.location.assign(url);
    } catch (err) {
      setActionError(asApiError(err));
      setBusyPlan(null);
    }
  }

  if (error) {
    return (
      <SectionHelper appearance="danger" title="Billing could not be loaded" dataHook="billing-error">
        {error.message}
      </SectionHelper>
    );
  }
  if (!billing) {
    return (
      <Box align="center" padding="48px" role="status" aria-label="Loading billing">
        <Loader size="medium" />
      </Box>
    );
  }

  const { plan, credits } = billing;
  const isFree = plan.priceMonthlyCents === 0;
  const usedPercent = credits.total > 0 ? Math.min(100, Math.round((credits.used / credits.total) * 100)) : 100;
  const upgrades = billing.plans.filter((candidate) => candidate.monthlyCredits > plan.monthlyCredits);

  return (
    <Box direction="vertical" gap="24px" dataHook="billing-page">
      <Heading size="large" as="h2">
        Billing &amp; Credits
      </Heading>
      {returnedFromUpgrade && (
        <SectionHelper appearance="success" title="Thank you for upgrading" dataHook="upgrade-success">
          {syncState === 'syncing'
            ? 'Confirming your new plan…'
            : `You are on the ${plan.name} plan with ${plan.monthlyCredits.toLocaleString()} credits a month.`}
        </SectionHelper>
      )}
      {syncState instanceof ApiError && (
        <SectionHelper appearance="warning" dataHook="sync-warning">
          Your plan could not be confirmed with the billing system just now ({syncState.message}). What you see
          is the last known state.
        </SectionHelper>
      )}
      {actionError && (
        <SectionHelper appearance="danger" dataHook="billing-action-error">
          {actionError.message}
        </SectionHelper>
      )}

      <Box gap="24px">
        <Box width="50%" direction="vertical">
          <Card stretchVertically>
            <Card.Header
              title="Current plan"
              suffix={
                billing.cancelAtPeriodEnd ? (
                  <Badge skin="warning" size="small" dataHook="plan-ending">
                    Ends {billing.periodEnd ? formatDate(billing.periodEnd) : 'at the end of the period'}
                  </Badge>
                ) : undefined
              }
            />
            <Card.Divider />
            <Card.Content>
              <Box direction="vertical" gap="6px">
                <Heading size="medium" as="h3" dataHook="plan-name">
                  {plan.name}
                </Heading>
                <Text dataHook="plan-price">{formatPrice(plan.priceMonthlyCents)}</Text>
                <Text secondary dataHook="plan-credits">
                  {plan.monthlyCredits.toLocaleString()} credits every month
                </Text>
                {billing.periodEnd && !billing.cancelAtPeriodEnd && (
                  <Text size="small" secondary dataHook="plan-renews">
                    Renews {formatDate(billing.periodEnd)}
                  </Text>
                )}
                {!isFree && (
                  <Box marginTop="12px">
                    <ManageButton billing={billing} busy={busyPlan === 'portal'} onPortal={manageSubscription} />
                  </Box>
                )}
              </Box>
            </Card.Content>
          </Card>
        </Box>
        <Box width="50%" direction="vertical">
          <Card stretchVertically>
            <Card.Header title="Credit usage" subtitle={`Resets on ${formatDate(credits.resetsOn)}`} />
            <Card.Divider />
            <Card.Content>
              <Box direction="vertical" gap="12px">
                <Box verticalAlign="bottom" gap="6px">
                  <Heading size="large" as="p" dataHook="credits-remaining">
                    {credits.remaining.toLocaleString()}
                  </Heading>
                  <Text secondary>credits remaining</Text>
                </Box>
                <LinearProgressBar
                  value={usedPercent}
                  skin={usedPercent >= 90 ? 'warning' : 'standard'}
                  aria-label="Credits used this period"
                  dataHook="credits-progress"
                />
                <Text size="small" dataHook="credits-used">
                  {credits.used.toLocaleString()} of {credits.total.toLocaleString()} used this period
                </Text>
              </Box>
            </Card.Content>
          </Card>
        </Box>
      </Box>

      {upgrades.length > 0 && (
        <Card>
          <Card.Header
            title={isFree ? 'Get more credits' : 'Need more credits?'}
            subtitle="Upgrading takes effect at once; the credits you used this month are kept."
          />
          <Card.Divider />
          <Card.Content>
            <Box gap="18px" dataHook="upgrade-plans">
              {upgrades.map((candidate) => (
                <Box
                  key={candidate.id}
                  direction="vertical"
                  gap="6px"
                  padding="18px"
                  border="1px solid"
                  borderColor="D60"
                  borderRadius="8px"
                  width="33%"
                  dataHook={`upgrade-${candidate.id}`}
                >
                  <Heading size="small" as="h4">
                    {candidate.name}
                  </Heading>
                  <Text>{formatPrice(candidate.priceMonthlyCents)}</Text>
                  <Text secondary size="small">
                    {candidate.monthlyCredits.toLocaleString()} credits every month
                  </Text>
                  <Box marginTop="6px">
                    <UpgradeButton
                      billing={billing}
                      plan={candidate}
                      busy={busyPlan === candidate.id}
                      onCheckout={checkout}
                    />
                  </Box>
                </Box>
              ))}
            </Box>
          </Card.Content>
        </Card>
      )}

      <Card>
        <Card.Header title="How credits work" />
        <Card.Divider />
        <Card.Content>
          <Box direction="vertical" gap="6px" dataHook="billing-tips">
            <Text size="small">Each optimized field of each product costs one credit (a title and a description: two).</Text>
            <Text size="small">Credits are reserved when a job starts; items that fail or are canceled are refunded.</Text>
            <Text size="small">
              Credits reset to your plan&apos;s amount on {formatDate(credits.resetsOn)}; unused credits do not roll over.
            </Text>
          </Box>
        </Card.Content>
      </Card>

      <Card>
        <Card.Header title="Usage history" subtitle="Every change to your credits, newest first" />
        <Card.Divider />
        <Table
          data={history}
          rowDataHook="history-row"
          columns={[
            { title: 'Date', render: (entry: LedgerEntry) => new Date(entry.createdAt).toLocaleString() },
            { title: 'Change', render: (entry: LedgerEntry) => REASON_LABEL[entry.reason] },
            { title: 'Details', render: (entry: LedgerEntry) => describe(entry) },
            {
              title: 'Credits',
              align: 'end',
              render: (entry: LedgerEntry) => (
                <Text size="small" skin={entry.delta > 0 ? 'success' : 'standard'} secondary={entry.delta === 0}>
                  {entry.delta > 0 ? `+${entry.delta.toLocaleString()}` : entry.delta === 0 ? '±0' : entry.delta.toLocaleString()}
                </Text>
              ),
            },
          ]}
        >
          <Table.Content />
        </Table>
        {cursor && (
          <Card.Content>
            <Button priority="secondary" size="small" onClick={loadMore} disabled={loadingMore} dataHook="history-more">
              {loadingMore ? <Loader size="tiny" /> : 'Show older'}
            </Button>
          </Card.Content>
        )}
      </Card>
    </Box>
  );
}

function UpgradeButton({
  billing,
  plan,
  busy,
  onCheckout,
}: {
  billing: Billing;
  plan: PlanInfo;
  busy: boolean;
  onCheckout: (plan: PlanInfo) => void;
}) {
  const { upgrade } = billing;
  if (upgrade.kind === 'wix' && upgrade.url) {
    // Wix's pricing page cannot open inside the dashboard's iframe.
    return (
      <Button as="a" href={upgrade.url} target="_blank" rel="noopener noreferrer" size="small" dataHook="upgrade-wix">
        Upgrade in Wix
      </Button>
    );
  }
  if (upgrade.kind === 'stripe') {
    return (
      <Button size="small" onClick={() => onCheckout(plan)} disabled={busy} dataHook="upgrade-checkout">
        {busy ? <Loader size="tiny" /> : `Choose ${plan.name}`}
      </Button>
    );
  }
  return (
    <Text size="small" secondary dataHook="upgrade-unavailable">
      Plans on this installation are set by its operator.
    </Text>
  );
}

function ManageButton({ billing, busy, onPortal }: { billing: Billing; busy: boolean; onPortal: () => void }) {
  if (billing.upgrade.kind === 'wix' && billing.upgrade.url) {
    return (
      <Button
        as="a"
        href={billing.upgrade.url}
        target="_blank"
        rel="noopener noreferrer"
        priority="secondary"
        size="small"
        dataHook="manage-subscription"
      >
        Manage in Wix
      </Button>
    );
  }
  if (billing.billingSource === 'stripe') {
    return (
      <Button priority="secondary" size="small" onClick={onPortal} disabled={busy} dataHook="manage-subscription">
        {busy ? <Loader size="tiny" /> : 'Manage subscription'}
      </Button>
    );
  }
  return null;
}

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'network', 'The server could not be reached.');
}
