import { useCallback, useEffect, useRef, useState } from 'react';
import { Link as RouterLink, useSearchParams } from 'react-router-dom';
import { Badge, Box, Button, Card, Checkbox, Heading, Loader, SectionHelper, Text } from '@wix/design-system';
import { api, type ImportReport, type StoreView, type SyncBatch, type SyncStatus } from '../api';
import { TextField, asApiError, useSubmit } from '../components/forms';
import './catalog.css';

const PLATFORM_LABEL: Record<StoreView['platform'], string> = {
  local: 'Local catalog',
  wix: 'Wix',
  woocommerce: 'WooCommerce',
};

export default function StoresPage() {
  const [stores, setStores] = useState<StoreView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [currency, setCurrency] = useState('USD');

  const reload = useCallback(() => {
    api
      .stores()
      .then((list) => setStores(list.stores))
      .catch((err) => setError(asApiError(err).message));
  }, []);
  useEffect(reload, [reload]);

  const create = useSubmit(async () => {
    await api.createStore(name.trim() || 'Local catalog', currency);
    setName('');
    reload();
  });
  const [wooUrl, setWooUrl] = useState('');
  const [wooKey, setWooKey] = useState('');
  const [wooSecret, setWooSecret] = useState('');
  const connect = useSubmit(async () => {
    await api.connectWooCommerce(wooUrl, wooKey, wooSecret, 'USD');
    setWooUrl('');
    setWooKey('');
    setWooSecret('');
    reload();
  });
  // Key approval: WooCommerce shows the merchant a grant screen, posts new keys to the
  // service, and sends the merchant back here with `success=1` (or 0 when denied).
  const authorize = useSubmit(async () => {
    const { authorizeUrl } = await api.authorizeWooCommerce(wooUrl, 'USD');
    if (window.top !== window.self) {
      window.open(authorizeUrl, '_blank', 'noopener');
    } else {
      window.location.assign(authorizeUrl);
    }
  });
  const [params] = useSearchParams();
  const returned = params.get('woocommerce') === 'returned' ? params.get('success') : null;

  return (
    <Box direction="vertical" gap="24px">
      <Box direction="vertical" gap="4px">
        <Heading size="large" as="h2">
          Stores
        </Heading>
        <Text secondary>
          Wix stores connect when you open the app from your Wix dashboard. Connect a WooCommerce store with
          its API keys, or keep any other catalog here and fill it from a WooCommerce or Shopify product CSV.
        </Text>
      </Box>
      {error && <SectionHelper appearance="danger">{error}</SectionHelper>}
      {returned === '1' && (
        <SectionHelper appearance="success" dataHook="woocommerce-approved">
          Access approved: your WooCommerce store is connected and its products are being read.
        </SectionHelper>
      )}
      {returned === '0' && (
        <SectionHelper appearance="warning" dataHook="woocommerce-denied">
          Access was not approved on the WooCommerce store, so nothing was connected.
        </SectionHelper>
      )}
      {stores === null ? (
        <Loader size="medium" />
      ) : (
        stores.map((store) => <StoreCard key={store.id} store={store} onChanged={reload} />)
      )}
      <Card>
        <Card.Header
          title="Connect a WooCommerce store"
          subtitle="Approve access on your store (you sign in to WordPress there), or paste a REST API key with Read/Write access from WooCommerce → Settings → Advanced → REST API."
        />
        <Card.Divider />
        <Card.Content>
          <form onSubmit={connect.submit} aria-label="Connect a WooCommerce store" noValidate>
            <Box direction="vertical" gap="12px">
              <TextField id="woo-url" label="Store address" value={wooUrl} onChange={setWooUrl} error={connect.fields.url} />
              <Box gap="12px">
                <Box width="50%">
                  <TextField id="woo-key" label="Consumer key" value={wooKey} onChange={setWooKey} error={connect.fields.consumerKey} />
                </Box>
                <Box width="50%">
                  <TextField id="woo-secret" label="Consumer secret" type="password" value={wooSecret} onChange={setWooSecret} error={connect.fields.consumerSecret} />
                </Box>
              </Box>
              {connect.formError && (
                <SectionHelper appearance="danger" dataHook="connect-error">
                  {connect.formError.platformMessage ?? connect.formError.message}
                </SectionHelper>
              )}
              {(authorize.formError || authorize.fields.url) && (
                <SectionHelper appearance="danger" dataHook="authorize-error">
                  {authorize.fields.url ?? authorize.formError?.message}
                </SectionHelper>
              )}
              <Box gap="12px">
                <Button type="submit" disabled={connect.busy} dataHook="connect-woocommerce">
                  {connect.busy ? <Loader size="tiny" /> : 'Connect with these keys'}
                </Button>
                <Button
                  priority="secondary"
                  disabled={authorize.busy}
                  onClick={(event) => authorize.submit(event)}
                  dataHook="authorize-woocommerce"
                >
                  {authorize.busy ? <Loader size="tiny" /> : 'Approve access on the store instead'}
                </Button>
              </Box>
            </Box>
          </form>
        </Card.Content>
      </Card>
      <Card>
        <Card.Header title="Add a local catalog" subtitle="Import products from a CSV file after creating it." />
        <Card.Divider />
        <Card.Content>
          <form onSubmit={create.submit} aria-label="Add a local catalog" noValidate>
            <Box gap="12px" verticalAlign="bottom">
              <Box width="320px">
                <TextField id="store-name" label="Catalog name" value={name} onChange={setName} error={create.fields.name} />
              </Box>
              <Box width="120px">
                <TextField id="store-currency" label="Currency" value={currency} onChange={setCurrency} error={create.fields.currency} />
              </Box>
              <Button type="submit" disabled={create.busy} dataHook="create-store">
                {create.busy ? <Loader size="tiny" /> : 'Add catalog'}
              </Button>
            </Box>
            {create.formError && <SectionHelper appearance="danger">{create.formError.message}</SectionHelper>}
          </form>
        </Card.Content>
      </Card>
    </Box>
  );
}

function StoreCard({ store, onChanged }: { store: StoreView; onChanged: () => void }) {
  const fileInput = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState<'import' | 'export' | 'delete' | 'sync' | null>(null);
  const [syncs, setSyncs] = useState<SyncBatch[] | null>(null);
  const [status, setStatus] = useState<SyncStatus | null>(null);
  const [report, setReport] = useState<ImportReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const syncable = store.platform !== 'local';
  const syncing = (status?.active.length ?? 0) > 0;

  // Syncs run in the background: follow the store's status (with its product count) while
  // one waits or runs.
  const refreshSync = useCallback(async () => {
    const [next, history] = await Promise.all([api.syncStatus(store.id), api.syncHistory(store.id)]);
    setStatus(next);
    setSyncs(history.items);
    return next;
  }, [store.id]);
  useEffect(() => {
    if (syncable) refreshSync().catch(() => setSyncs([]));
  }, [syncable, refreshSync]);
  useEffect(() => {
    if (!syncing) return;
    const timer = window.setTimeout(() => {
      refreshSync().catch((err) => setError(asApiError(err).message));
    }, 1000);
    return () => window.clearTimeout(timer);
  }, [syncing, status, refreshSync]);

  const syncNow = () =>
    run('sync', async () => {
      await api.syncStore(store.id);
      await refreshSync();
    });

  const toggleAutoSync = (enabled: boolean) =>
    run('sync', async () => {
      await api.setAutoSync(store.id, enabled);
      await refreshSync();
    });

  async function run(kind: 'import' | 'export' | 'delete' | 'sync', action: () => Promise<void>) {
    setBusy(kind);
    setError(null);
    try {
      await action();
    } catch (err) {
      const apiError = asApiError(err);
      setError(apiError.platformMessage ?? apiError.message);
    } finally {
      setBusy(null);
    }
  }

  const importFile = (file: File) =>
    run('import', async () => {
      setReport(await api.importCatalog(store.id, file));
      onChanged();
    });

  const exportFile = () =>
    run('export', async () => {
      const blob = await api.exportCatalog(store.id);
      const url = URL.createObjectURL(blob);
      const link = document.createElement('a');
      link.href = url;
      link.download = `${store.name.replace(/[^A-Za-z0-9-]+/g, '_')}.csv`;
      link.click();
      URL.revokeObjectURL(url);
    });

  return (
    <Card dataHook="store-card">
      <Card.Header
        title={store.name}
        subtitle={`${(status?.productCount ?? store.productCount).toLocaleString()} products · ${store.currency}`}
        suffix={<Badge size="small" skin="neutralStandard">{PLATFORM_LABEL[store.platform]}</Badge>}
      />
      <Card.Divider />
      <Card.Content>
        <Box direction="vertical" gap="12px">
          <Box gap="12px" verticalAlign="middle">
            <RouterLink to={`/products?storeId=${store.id}`}>Browse products</RouterLink>
            {store.platform === 'local' && (
              <>
                <input
                  ref={fileInput}
                  type="file"
                  accept=".csv,text/csv"
                  aria-label={`Import a CSV into ${store.name}`}
                  data-hook="import-file"
                  style={{ display: 'none' }}
                  onChange={(event) => {
                    const file = event.target.files?.[0];
                    event.target.value = '';
                    if (file) importFile(file);
                  }}
                />
                <Button size="small" onClick={() => fileInput.current?.click()} disabled={busy !== null} dataHook="import-button">
                  {busy === 'import' ? <Loader size="tiny" /> : 'Import CSV'}
                </Button>
              </>
            )}
            {syncable && (
              <Button size="small" onClick={syncNow} disabled={busy !== null || syncing} dataHook="sync-button">
                {busy === 'sync' || syncing ? <Loader size="tiny" /> : 'Sync now'}
              </Button>
            )}
            <Button size="small" priority="secondary" onClick={exportFile} disabled={busy !== null} dataHook="export-button">
              {busy === 'export' ? <Loader size="tiny" /> : 'Export CSV'}
            </Button>
            {store.platform !== 'wix' &&
              (confirmDelete ? (
                <Box gap="6px" verticalAlign="middle">
                  <Text size="small">
                    {store.platform === 'local' ? 'Delete this catalog and its products?' : 'Disconnect this store? Its products are removed from here, not from the store.'}
                  </Text>
                  <Button size="small" skin="destructive" dataHook="confirm-delete"
                    onClick={() => run('delete', async () => { await api.deleteStore(store.id); onChanged(); })}>
                    Delete
                  </Button>
                  <Button size="small" priority="secondary" onClick={() => setConfirmDelete(false)}>
                    Cancel
                  </Button>
                </Box>
              ) : (
                <Button size="small" priority="secondary" skin="destructive" onClick={() => setConfirmDelete(true)} dataHook="delete-button">
                  Delete
                </Button>
              ))}
          </Box>
          {syncable && status && (
            <Box gap="12px" verticalAlign="middle">
              <Checkbox
                checked={status.autoSync}
                disabled={busy !== null}
                onChange={(event) => toggleAutoSync(event.target.checked)}
                dataHook="auto-sync"
              >
                Keep in sync automatically (every 15 minutes)
              </Checkbox>
              <Text size="small" secondary dataHook="sync-status">
                {syncing
                  ? `Syncing… (${status.active.length} waiting or running)`
                  : status.syncedThrough
                    ? `Up to date as of ${new Date(status.syncedThrough).toLocaleString()}`
                    : 'Not read yet'}
              </Text>
            </Box>
          )}
          {error && <SectionHelper appearance="danger" dataHook="store-error">{error}</SectionHelper>}
          {report && <ImportResult report={report} />}
          {syncs && syncs.length > 0 && <SyncHistory syncs={syncs} />}
        </Box>
      </Card.Content>
    </Card>
  );
}

function ImportResult({ report }: { report: ImportReport }) {
  return (
    <Box direction="vertical" gap="8px" dataHook="import-report">
      <SectionHelper appearance={report.rejected.length ? 'warning' : 'success'}>
        Imported {report.imported} {report.imported === 1 ? 'product' : 'products'} from a {report.format === 'shopify' ? 'Shopify' : 'WooCommerce'} CSV:{' '}
        {report.created} new, {report.updated} updated, {report.unchanged} unchanged
        {report.rejected.length > 0 && `, ${report.rejected.length} rows rejected`}.
      </SectionHelper>
      {report.rejected.length > 0 && (
        <table className="uo-table" data-hook="rejected-rows">
          <thead>
            <tr>
              <th>Line</th>
              <th>Why it was not imported</th>
            </tr>
          </thead>
          <tbody>
            {report.rejected.slice(0, 200).map((row) => (
              <tr key={row.line}>
                <td>{row.line}</td>
                <td>{row.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Box>
  );
}

const TRIGGER_LABEL: Record<SyncBatch['trigger'], string> = {
  connect: 'On connect',
  manual: 'Sync now',
  schedule: 'Scheduled',
  webhook: 'Store webhook',
};

function SyncHistory({ syncs }: { syncs: SyncBatch[] }) {
  return (
    <table className="uo-table" data-hook="sync-history">
      <thead>
        <tr>
          <th>When</th>
          <th>Trigger</th>
          <th>Result</th>
          <th>Duration</th>
        </tr>
      </thead>
      <tbody>
        {syncs.slice(0, 10).map((sync) => (
          <tr key={sync.id}>
            <td>{new Date(sync.startedAt).toLocaleString()}</td>
            <td>{TRIGGER_LABEL[sync.trigger]}</td>
            <td>
              {sync.succeeded
                ? `${sync.fetched} read: ${sync.created} new, ${sync.updated} updated, ${sync.deleted} removed`
                : `Failed: ${sync.error ?? 'unknown error'}`}
            </td>
            <td>{(sync.durationMs / 1000).toFixed(1)} s</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
