import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { Link as RouterLink, useNavigate } from 'react-router-dom';
import {
  Box,
  Button,
  Card,
  Checkbox,
  Dropdown,
  FormField,
  Heading,
  Input,
  InputArea,
  Loader,
  SectionHelper,
  SegmentedToggle,
  Text,
} from '@wix/design-system';
import {
  ApiError,
  api,
  creditShortfall,
  type AttributeId,
  type CollectionView,
  type OptimizerOptions,
  type ProductSummary,
  type SourceScope,
  type StoreView,
} from '../api';
import { asApiError } from '../components/forms';
import { useMe } from '../meContext';
import { plural, shortfallMessage } from '../jobs/labels';
import './catalog.css';
import './jobs.css';

const PAGE_SIZE = 25;
const COLLECTION_PAGE = 25;
const KEEP_LANGUAGE = '';
const PROMPT_MAX = 2000;
const VOICE_MAX = 500;

export default function OptimizerPage() {
  const navigate = useNavigate();
  const { me, reload: reloadMe } = useMe();
  const [options, setOptions] = useState<OptimizerOptions | null>(null);
  const [stores, setStores] = useState<StoreView[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [storeId, setStoreId] = useState('');
  const [scope, setScope] = useState<SourceScope>('products');
  const [products, setProducts] = useState<Map<string, ProductSummary>>(new Map());
  const [collections, setCollections] = useState<Map<string, CollectionView>>(new Map());
  const [attributes, setAttributes] = useState<Set<AttributeId>>(new Set());
  const [targetLang, setTargetLang] = useState(KEEP_LANGUAGE);
  const [userPrompt, setUserPrompt] = useState('');
  const [brandVoice, setBrandVoice] = useState('');
  const [busy, setBusy] = useState(false);
  const [submitError, setSubmitError] = useState<ApiError | null>(null);

  useEffect(() => {
    Promise.all([api.optimizerOptions(), api.stores()])
      .then(([loadedOptions, loadedStores]) => {
        setOptions(loadedOptions);
        setStores(loadedStores.stores);
        setStoreId((current) => current || loadedStores.stores[0]?.id || '');
      })
      .catch((err) => setLoadError(asApiError(err).message));
  }, []);

  const productCount =
    scope === 'products' ? products.size : [...collections.values()].reduce((sum, c) => sum + c.productCount, 0);
  const perItem = options?.creditsPerItem ?? 1;
  const cost = productCount * attributes.size * perItem;
  const remaining = me.credits.remaining;
  const short = cost > remaining;
  const tooMany = options ? productCount > options.maxProductsPerJob : false;
  const sourceCount = scope === 'products' ? products.size : collections.size;

  const blocker =
    sourceCount === 0
      ? scope === 'products'
        ? 'Select at least one product.'
        : 'Select at least one collection.'
      : scope === 'collections' && productCount === 0
        ? 'The selected collections have no products.'
        : attributes.size === 0
          ? 'Choose at least one field to optimize.'
          : tooMany
            ? `A job can hold up to ${plural(options!.maxProductsPerJob, 'product')}.`
            : short
              ? 'Not enough credits for this job.'
              : null;

  // A refusal speaks of the job as it was sent; a changed job has not been refused yet.
  useEffect(() => setSubmitError(null), [scope, products, collections, attributes]);

  function chooseStore(id: string) {
    setStoreId(id);
    setProducts(new Map());
    setCollections(new Map());
  }

  function toggleAttribute(id: AttributeId) {
    setAttributes((current) => {
      const next = new Set(current);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (blocker || busy) return;
    setBusy(true);
    setSubmitError(null);
    try {
      const job = await api.createJob({
        sourceScope: scope,
        sourceIds: scope === 'products' ? [...products.keys()] : [...collections.keys()],
        ...(storeId ? { storeId } : {}),
        attributes: options!.attributes.map((a) => a.id).filter((id) => attributes.has(id)),
        targetLang: targetLang || null,
        ...(userPrompt.trim() ? { userPrompt: userPrompt.trim() } : {}),
        ...(brandVoice.trim() ? { brandVoice: brandVoice.trim() } : {}),
      });
      reloadMe();
      navigate('/queue', { state: { createdJobId: job.id } });
    } catch (err) {
      const apiError = asApiError(err);
      setSubmitError(apiError);
      // Credits may have been spent elsewhere: show what the account really has.
      if (apiError.status === 402) reloadMe();
      setBusy(false);
    }
  }

  if (loadError) {
    return (
      <PageTitle>
        <SectionHelper appearance="danger" dataHook="optimizer-error">
          We could not load the optimizer: {loadError}
        </SectionHelper>
      </PageTitle>
    );
  }
  if (!options || !stores) {
    return (
      <PageTitle>
        <Loader size="medium" />
      </PageTitle>
    );
  }
  if (stores.length === 0) {
    return (
      <PageTitle>
        <Card>
          <Card.Content>
            <Box direction="vertical" align="center" padding="36px" gap="8px" dataHook="optimizer-no-store">
              <Text weight="bold">Connect a store first</Text>
              <Text secondary size="small">
                The optimizer works on the products of your stores. <RouterLink to="/stores">Go to Stores</RouterLink>
              </Text>
            </Box>
          </Card.Content>
        </Card>
      </PageTitle>
    );
  }

  const shortfall = submitError ? creditShortfall(submitError) : null;
  const fieldErrors = submitError?.fields ?? {};
  const storeOptions = stores.map((s) => ({ id: s.id, value: s.name }));
  const languageOptions = [
    { id: KEEP_LANGUAGE, value: "Keep each product's language" },
    ...options.languages.map((l) => ({ id: l.code, value: `Translate to ${l.name}`, disabled: !options.canTranslate })),
  ];

  return (
    <PageTitle>
      <form onSubmit={submit} aria-label="Optimize products" noValidate>
        <div className="uo-optimizer">
          <Box direction="vertical" gap="24px" className="uo-optimizer-main">
            <Card>
              <Card.Header title="1. Choose products" subtitle="Pick products one by one, or whole collections." />
              <Card.Divider />
              <Card.Content>
                <Box direction="vertical" gap="12px">
                  <Box width="320px" maxWidth="100%">
                    <SegmentedToggle
                      fullWidth
                      size="small"
                      selected={scope}
                      onClick={(_event, value) => setScope(value as SourceScope)}
                      ariaLabel="Choose from"
                      dataHook="scope-toggle"
                    >
                      <SegmentedToggle.Button value="products">Products</SegmentedToggle.Button>
                      <SegmentedToggle.Button value="collections">Collections</SegmentedToggle.Button>
                    </SegmentedToggle>
                  </Box>
                  {stores.length > 1 && (
                    <FormField label="Store" id="optimizer-store">
                      <Dropdown
                        id="optimizer-store"
                        ariaLabel="Store"
                        options={storeOptions}
                        selectedId={storeId}
                        onSelect={(option) => chooseStore(String(option.id))}
                      />
                    </FormField>
                  )}
                  {scope === 'products' ? (
                    <ProductPicker storeId={storeId} selected={products} onChange={setProducts} />
                  ) : (
                    <CollectionPicker storeId={storeId} selected={collections} onChange={setCollections} />
                  )}
                </Box>
              </Card.Content>
            </Card>

            <Card>
              <Card.Header title="2. Choose what to optimize" subtitle="Each field of each product costs one credit." />
              <Card.Divider />
              <Card.Content>
                <fieldset className="uo-fieldset" data-hook="attribute-options">
                  <legend className="uo-visually-hidden">Fields to optimize</legend>
                  <div className="uo-attributes">
                    {options.attributes.map((attribute) => (
                      <Checkbox
                        key={attribute.id}
                        id={`attribute-${attribute.id}`}
                        checked={attributes.has(attribute.id)}
                        onChange={() => toggleAttribute(attribute.id)}
                        dataHook={`attribute-${attribute.id}`}
                        selectionArea="always"
                        selectionAreaSkin="outlined"
                        selectionAreaPadding="12px 16px"
                      >
                        {attribute.label}
                      </Checkbox>
                    ))}
                  </div>
                </fieldset>
              </Card.Content>
            </Card>

            <Card>
              <Card.Header title="3. Guide the writing" subtitle="Optional: language, instructions and the voice of your brand." />
              <Card.Divider />
              <Card.Content>
                <Box direction="vertical" gap="18px">
                  <FormField label="Language" id="target-language">
                    <Dropdown
                      id="target-language"
                      ariaLabel="Language"
                      dataHook="target-language"
                      ariaDescribedby={options.canTranslate ? undefined : 'translation-unavailable'}
                      options={languageOptions}
                      selectedId={targetLang}
                      onSelect={(option) => setTargetLang(String(option.id))}
                    />
                  </FormField>
                  {!options.canTranslate && (
                    <Text size="small" secondary id="translation-unavailable" dataHook="translation-unavailable">
                      Translation needs an AI provider. This server writes with the offline “{options.provider}” provider,
                      which keeps each product's language.
                    </Text>
                  )}
                  <FormField
                    label="Instructions"
                    id="user-prompt"
                    infoContent="What the copy should stress, mention or avoid. Applies to every product of the job."
                    charCount={PROMPT_MAX - userPrompt.length}
                  >
                    <InputArea
                      id="user-prompt"
                      ariaLabel="Instructions"
                      placeholder="For example: mention free shipping over $50; avoid exclamation marks."
                      value={userPrompt}
                      maxLength={PROMPT_MAX}
                      rows={4}
                      resizable
                      onChange={(event) => setUserPrompt(event.target.value)}
                      status={fieldErrors.userPrompt ? 'error' : undefined}
                      statusMessage={fieldErrors.userPrompt}
                    />
                  </FormField>
                  <FormField label="Brand voice" id="brand-voice" charCount={VOICE_MAX - brandVoice.length}>
                    <Input
                      id="brand-voice"
                      ariaLabel="Brand voice"
                      placeholder="For example: warm, playful, no jargon"
                      value={brandVoice}
                      maxLength={VOICE_MAX}
                      onChange={(event) => setBrandVoice(event.target.value)}
                      status={fieldErrors.brandVoice ? 'error' : undefined}
                      statusMessage={fieldErrors.brandVoice}
                    />
                  </FormField>
                </Box>
              </Card.Content>
            </Card>
          </Box>

          <aside className="uo-optimizer-side" aria-label="Cost of this job">
            <Card dataHook="credit-calculator">
              <Card.Header title="Cost" />
              <Card.Divider />
              <Card.Content>
                <Box direction="vertical" gap="12px">
                  <Box direction="vertical" gap="2px" aria-live="polite">
                    <Heading size="extraLarge" as="p" dataHook="job-cost">
                      {plural(cost, 'credit')}
                    </Heading>
                    <Text size="small" secondary dataHook="cost-breakdown">
                      {scope === 'collections' && collections.size > 0 ? 'Up to ' : ''}
                      {plural(productCount, 'product')} × {plural(attributes.size, 'field')}
                      {perItem !== 1 ? ` × ${perItem} credits` : ''}
                    </Text>
                  </Box>
                  <div className="uo-credit-lines">
                    <span>Remaining credits</span>
                    <strong data-hook="credits-remaining">{remaining.toLocaleString()}</strong>
                    <span>After this job</span>
                    <strong data-hook="credits-after" className={short ? 'uo-negative' : undefined}>
                      {short ? `${(cost - remaining).toLocaleString()} short` : (remaining - cost).toLocaleString()}
                    </strong>
                  </div>
                  {scope === 'collections' && collections.size > 1 && (
                    <Text size="tiny" secondary>
                      A product in several collections is optimized and charged once, so the final cost can be lower.
                    </Text>
                  )}
                  {short && (
                    <SectionHelper appearance="premium" title="Not enough credits" dataHook="upgrade-cta">
                      <Box direction="vertical" gap="8px">
                        {shortfall && (
                          <span data-hook="submit-error">
                            {refusedText(shortfall)}
                          </span>
                        )}
                        <span>
                          {shortfallMessage(cost, remaining)} Choose fewer products or fields, or upgrade your plan for
                          more credits every month.
                        </span>
                        <Box>
                          <Button as={RouterLink} to="/account" size="small" skin="premium" dataHook="upgrade-plan">
                            Upgrade plan
                          </Button>
                        </Box>
                      </Box>
                    </SectionHelper>
                  )}
                  {submitError && !(shortfall && short) && (
                    <SectionHelper
                      appearance={shortfall ? 'premium' : 'danger'}
                      title={shortfall ? 'Not enough credits' : 'The job was not created'}
                      dataHook="submit-error"
                    >
                      <Box direction="vertical" gap="8px">
                        <span>
                          {shortfall
                            ? refusedText(shortfall)
                            : errorText(submitError)}
                        </span>
                        {shortfall && (
                          <Box>
                            <Button as={RouterLink} to="/account" size="small" skin="premium">
                              Upgrade plan
                            </Button>
                          </Box>
                        )}
                      </Box>
                    </SectionHelper>
                  )}
                  <Button
                    type="submit"
                    fullWidth
                    disabled={Boolean(blocker) || busy}
                    dataHook="optimize"
                    aria-describedby={blocker ? 'optimize-blocker' : undefined}
                  >
                    {busy ? <Loader size="tiny" /> : 'Optimize'}
                  </Button>
                  {blocker && (
                    <Text size="small" secondary id="optimize-blocker" dataHook="optimize-blocker">
                      {blocker}
                    </Text>
                  )}
                </Box>
              </Card.Content>
            </Card>
          </aside>
        </div>
      </form>
    </PageTitle>
  );
}

/** The words for a 402 answer: the job the merchant sent was refused for its cost. */
function refusedText({ required, remaining }: { required: number; remaining: number }): string {
  return `The job was not created: ${shortfallMessage(required, remaining, 'it')} Credits were used elsewhere since this page loaded.`;
}

function errorText(error: ApiError): string {
  const fields = Object.values(error.fields);
  if (fields.length > 0) return fields.join(' ');
  return error.message;
}

function PageTitle({ children }: { children: ReactNode }) {
  return (
    <Box direction="vertical" gap="24px">
      <Box direction="vertical" gap="4px">
        <Heading size="large" as="h2">
          Product Optimizer
        </Heading>
        <Text secondary>Rewrite titles, descriptions and SEO fields with AI, then review every change before it is published.</Text>
      </Box>
      {children}
    </Box>
  );
}

function SelectionBar({ count, noun, onClear }: { count: number; noun: string; onClear: () => void }) {
  return (
    <Box verticalAlign="middle" gap="12px" dataHook="selection-count">
      <Text size="small" weight="bold">
        {count === 0 ? `No ${noun}s selected` : `${plural(count, noun)} selected`}
      </Text>
      {count > 0 && (
        <Button size="tiny" priority="secondary" onClick={onClear} dataHook="clear-selection">
          Clear selection
        </Button>
      )}
    </Box>
  );
}

function ProductPicker({
  storeId,
  selected,
  onChange,
}: {
  storeId: string;
  selected: Map<string, ProductSummary>;
  onChange: (next: Map<string, ProductSummary>) => void;
}) {
  const [search, setSearch] = useState('');
  const [q, setQ] = useState('');
  const [items, setItems] = useState<ProductSummary[]>([]);
  const [total, setTotal] = useState(0);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const timer = setTimeout(() => setQ(search.trim()), 300);
    return () => clearTimeout(timer);
  }, [search]);

  const filters = useMemo(() => ({ q: q || undefined, storeId: storeId || undefined, limit: PAGE_SIZE }), [q, storeId]);

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

  const shownSelected = items.filter((p) => selected.has(p.id)).length;
  const allShown = items.length > 0 && shownSelected === items.length;

  function toggle(product: ProductSummary) {
    const next = new Map(selected);
    if (next.has(product.id)) next.delete(product.id);
    else next.set(product.id, product);
    onChange(next);
  }

  function toggleAll() {
    const next = new Map(selected);
    for (const product of items) {
      if (allShown) next.delete(product.id);
      else next.set(product.id, product);
    }
    onChange(next);
  }

  return (
    <Box direction="vertical" gap="12px" dataHook="product-picker">
      <FormField label="Search products" id="picker-search">
        <Input
          id="picker-search"
          ariaLabel="Search products"
          placeholder="Title, SKU, brand or category"
          value={search}
          onChange={(event) => setSearch(event.target.value)}
          onClear={() => setSearch('')}
          clearButton
        />
      </FormField>
      <SelectionBar count={selected.size} noun="product" onClear={() => onChange(new Map())} />
      {error && <SectionHelper appearance="danger">{error}</SectionHelper>}
      {items.length === 0 && !loading ? (
        <Box direction="vertical" align="center" padding="24px" gap="4px" dataHook="picker-empty">
          <Text weight="bold">No products found</Text>
          <Text secondary size="small">
            {q ? 'Try another search.' : 'This store has no products yet.'}
          </Text>
        </Box>
      ) : (
        <div className="uo-picker-scroll">
          <table className="uo-table uo-picker" data-hook="picker-table">
            <thead>
              <tr>
                <th className="uo-check-cell">
                  <Checkbox
                    checked={allShown}
                    indeterminate={shownSelected > 0 && !allShown}
                    onChange={toggleAll}
                    dataHook="select-all-shown"
                    tooltipContent="Select every product shown"
                  >
                    <span className="uo-visually-hidden">Select all shown products</span>
                  </Checkbox>
                </th>
                <th aria-label="Image" />
                <th>Product</th>
              </tr>
            </thead>
            <tbody>
              {items.map((product) => (
                <tr
                  key={product.id}
                  onClick={() => toggle(product)}
                  data-hook="picker-row"
                  aria-selected={selected.has(product.id)}
                  className={selected.has(product.id) ? 'uo-selected' : undefined}
                >
                  <td className="uo-check-cell" onClick={(event) => event.stopPropagation()}>
                    <Checkbox checked={selected.has(product.id)} onChange={() => toggle(product)} dataHook="picker-checkbox">
                      <span className="uo-visually-hidden">Select {product.title}</span>
                    </Checkbox>
                  </td>
                  <td>
                    {product.imageUrl ? <img className="uo-thumb" src={product.imageUrl} alt="" loading="lazy" /> : <div className="uo-thumb" />}
                  </td>
                  <td>
                    <div className="uo-product-title">{product.title}</div>
                    <div className="uo-muted">{product.sku ?? product.externalId}</div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Box verticalAlign="middle" gap="12px">
        <Text size="small" secondary dataHook="picker-count">
          Showing {items.length} of {total} products
        </Text>
        {loading && <Loader size="tiny" />}
        {cursor && !loading && (
          <Button size="small" priority="secondary" onClick={loadMore} dataHook="picker-load-more">
            Load more
          </Button>
        )}
      </Box>
    </Box>
  );
}

function CollectionPicker({
  storeId,
  selected,
  onChange,
}: {
  storeId: string;
  selected: Map<string, CollectionView>;
  onChange: (next: Map<string, CollectionView>) => void;
}) {
  const [all, setAll] = useState<CollectionView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [search, setSearch] = useState('');
  const [shown, setShown] = useState(COLLECTION_PAGE);

  useEffect(() => {
    setAll(null);
    api
      .collections(storeId || undefined)
      .then((list) => setAll(list.items))
      .catch((err) => setError(asApiError(err).message));
  }, [storeId]);

  const needle = search.trim().toLowerCase();
  const matching = useMemo(
    () => (all ?? []).filter((c) => !needle || c.path.toLowerCase().includes(needle) || c.name.toLowerCase().includes(needle)),
    [all, needle],
  );
  const items = matching.slice(0, shown);
  const shownSelected = items.filter((c) => selected.has(c.id)).length;
  const allShown = items.length > 0 && shownSelected === items.length;

  function toggle(collection: CollectionView) {
    const next = new Map(selected);
    if (next.has(collection.id)) next.delete(collection.id);
    else next.set(collection.id, collection);
    onChange(next);
  }

  function toggleAll() {
    const next = new Map(selected);
    for (const collection of items) {
      if (allShown) next.delete(collection.id);
      else next.set(collection.id, collection);
    }
    onChange(next);
  }

  return (
    <Box direction="vertical" gap="12px" dataHook="collection-picker">
      <FormField label="Search collections" id="collection-search">
        <Input
          id="collection-search"
          ariaLabel="Search collections"
          placeholder="Collection name"
          value={search}
          onChange={(event) => {
            setSearch(event.target.value);
            setShown(COLLECTION_PAGE);
          }}
          onClear={() => setSearch('')}
          clearButton
        />
      </FormField>
      <SelectionBar count={selected.size} noun="collection" onClear={() => onChange(new Map())} />
      {error && <SectionHelper appearance="danger">{error}</SectionHelper>}
      {all === null && !error ? (
        <Loader size="small" />
      ) : items.length === 0 ? (
        <Box direction="vertical" align="center" padding="24px" gap="4px" dataHook="picker-empty">
          <Text weight="bold">No collections found</Text>
          <Text secondary size="small">
            {needle ? 'Try another search.' : 'This store has no collections. Pick products instead.'}
          </Text>
        </Box>
      ) : (
        <div className="uo-picker-scroll">
          <table className="uo-table uo-picker" data-hook="collection-table">
            <thead>
              <tr>
                <th className="uo-check-cell">
                  <Checkbox
                    checked={allShown}
                    indeterminate={shownSelected > 0 && !allShown}
                    onChange={toggleAll}
                    dataHook="select-all-collections"
                  >
                    <span className="uo-visually-hidden">Select all shown collections</span>
                  </Checkbox>
                </th>
                <th>Collection</th>
                <th>Products</th>
              </tr>
            </thead>
            <tbody>
              {items.map((collection) => (
                <tr
                  key={collection.id}
                  onClick={() => toggle(collection)}
                  data-hook="collection-row"
                  aria-selected={selected.has(collection.id)}
                  className={selected.has(collection.id) ? 'uo-selected' : undefined}
                >
                  <td className="uo-check-cell" onClick={(event) => event.stopPropagation()}>
                    <Checkbox checked={selected.has(collection.id)} onChange={() => toggle(collection)}>
                      <span className="uo-visually-hidden">Select {collection.path}</span>
                    </Checkbox>
                  </td>
                  <td>
                    <div className="uo-product-title">{collection.name}</div>
                    {collection.path !== collection.name && <div className="uo-muted">{collection.path}</div>}
                  </td>
                  <td>{collection.productCount.toLocaleString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {all && (
        <Box verticalAlign="middle" gap="12px">
          <Text size="small" secondary>
            Showing {items.length} of {matching.length} collections
          </Text>
          {matching.length > items.length && (
            <Button size="small" priority="secondary" onClick={() => setShown((n) => n + COLLECTION_PAGE)}>
              Load more
            </Button>
          )}
        </Box>
      )}
    </Box>
  );
}
