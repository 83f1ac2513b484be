import { useEffect, useMemo, useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router-dom';
import { Badge, Box, Button, Card, Dropdown, FormField, Heading, Input, Loader, SectionHelper, Text } from '@wix/design-system';
import { api, type CollectionView, type ProductSummary, type StoreView } from '../api';
import { asApiError } from '../components/forms';
import { AVAILABILITY_LABEL, formatPrice } from '../components/format';
import './catalog.css';

const PAGE_SIZE = 25;
const ALL = '';

export default function ProductsPage() {
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const q = params.get('q') ?? '';
  const storeId = params.get('storeId') ?? ALL;
  const collectionId = params.get('collectionId') ?? ALL;
  const [search, setSearch] = useState(q);
  const [stores, setStores] = useState<StoreView[]>([]);
  const [collections, setCollections] = useState<CollectionView[]>([]);
  const [items, setItems] = useState<ProductSummary[]>([]);
  const [total, setTotal] = useState(0);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const setFilter = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    if (key === 'storeId') next.delete('collectionId');
    setParams(next, { replace: true });
  };

  useEffect(() => {
    api.stores().then((list) => setStores(list.stores)).catch(() => setStores([]));
  }, []);

  useEffect(() => {
    api
      .collections(storeId || undefined)
      .then((list) => setCollections(list.items))
      .catch(() => setCollections([]));
  }, [storeId]);

  // Search as the merchant types, without a request per keystroke.
  useEffect(() => {
    const timer = setTimeout(() => search !== q && setFilter('q', search.trim()), 300);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [search]);

  const filters = useMemo(
    () => ({ q: q || undefined, storeId: storeId || undefined, collectionId: collectionId || undefined, limit: PAGE_SIZE }),
    [q, storeId, collectionId],
  );

  useEffect(() => {
    let cancelled = false;
    setLoading(true);
    setError(null);
    api
      .products(filters)
      .then((page) => {
        if (cancelled) return;
        setItems(page.items);
        setTotal(page.total);
        setCursor(page.nextCursor);
      })
      .catch((err) => !cancelled && setError(asApiError(err).message))
      .finally(() => !cancelled && setLoading(false));
    return () => {
      cancelled = true;
    };
  }, [filters]);

  async function loadMore() {
    if (!cursor) return;
    setLoading(true);
    try {
      const page = await api.products({ ...filters, cursor });
      setItems((current) => [...current, ...page.items]);
      setCursor(page.nextCursor);
    } catch (err) {
      setError(asApiError(err).message);
    } finally {
      setLoading(false);
    }
  }

  const storeOptions = [{ id: ALL, value: 'All stores' }, ...stores.map((s) => ({ id: s.id, value: s.name }))];
  const collectionOptions = [
    { id: ALL, value: 'All collections' },
    ...collections.map((c) => ({ id: c.id, value: `${c.path} (${c.productCount})` })),
  ];

  return (
    <Box direction="vertical" gap="24px">
      <Box direction="vertical" gap="4px">
        <Heading size="large" as="h2">
          Products
        </Heading>
        <Text secondary>Everything in your connected stores, ready to optimize.</Text>
      </Box>
      <div className="uo-toolbar">
        <FormField label="Search" id="product-search">
          <Input
            id="product-search"
            ariaLabel="Search products"
            placeholder="Title, SKU, brand or category"
            value={search}
            onChange={(event) => setSearch(event.target.value)}
            onClear={() => setSearch('')}
            clearButton
          />
        </FormField>
        {stores.length > 1 && (
          <FormField label="Store" id="product-store">
            <Dropdown
              id="product-store"
              ariaLabel="Store"
              options={storeOptions}
              selectedId={storeId}
              onSelect={(option) => setFilter('storeId', String(option.id))}
            />
          </FormField>
        )}
        <FormField label="Collection" id="product-collection">
          <Dropdown
            id="product-collection"
            ariaLabel="Collection"
            dataHook="collection-filter"
            options={collectionOptions}
            selectedId={collectionId}
            onSelect={(option) => setFilter('collectionId', String(option.id))}
          />
        </FormField>
      </div>
      {error && (
        <SectionHelper appearance="danger" dataHook="products-error">
          {error}
        </SectionHelper>
      )}
      <Card>
        <Card.Content>
          {items.length === 0 && !loading ? (
            <Box direction="vertical" align="center" padding="36px" gap="8px" dataHook="products-empty">
              <Text weight="bold">No products found</Text>
              <Text secondary size="small">
                {q || collectionId ? 'Try another search or collection.' : 'Connect a store or import a catalog CSV on the Stores page.'}
              </Text>
            </Box>
          ) : (
            <table className="uo-table" data-hook="products-table">
              <thead>
                <tr>
                  <th aria-label="Image" />
                  <th>Product</th>
                  <th>Price</th>
                  <th>Availability</th>
                  <th>Variants</th>
                </tr>
              </thead>
              <tbody>
                {items.map((product) => (
                  <tr key={product.id} onClick={() => navigate(`/products/${product.id}`)} data-hook="product-row">
                    <td>
                      {product.imageUrl ? <img className="uo-thumb" src={product.imageUrl} alt="" loading="lazy" /> : <div className="uo-thumb" />}
                    </td>
                    <td>
                      <div className="uo-product-title">{product.title}</div>
                      <div className="uo-muted">{product.sku ?? product.externalId}</div>
                    </td>
                    <td>{formatPrice(product.price, product.currency)}</td>
                    <td>
                      <Badge size="small" skin={product.availability === 'in_stock' ? 'success' : 'neutralLight'}>
                        {AVAILABILITY_LABEL[product.availability]}
                      </Badge>
                    </td>
                    <td>{product.variantCount || '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <Box marginTop="16px" verticalAlign="middle" gap="12px">
            <Text size="small" secondary dataHook="products-count">
              Showing {items.length} of {total} products
            </Text>
            {loading && <Loader size="tiny" />}
            {cursor && !loading && (
              <Button size="small" priority="secondary" onClick={loadMore} dataHook="load-more">
                Load more
              </Button>
            )}
          </Box>
        </Card.Content>
      </Card>
    </Box>
  );
}
