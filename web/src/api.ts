// The one client for the Ultimate Optimizer API. Every failure becomes an ApiError with
// the server's code, message and details.
import {
  clearTokens,
  getAccessToken,
  getRefreshToken,
  instanceFromUrl,
  saveTokens,
  setWixInstance,
  wixInstance,
} from './session';

export type FieldErrors = Record<string, string>;

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details: unknown = null) {
    // Server messages are written as phrases; shown alone they read better as sentences.
    super(message ? message.charAt(0).toUpperCase() + message.slice(1) : message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The store platform's own words, for a 502 `store_error`. */
  get platformMessage(): string | null {
    const details = this.details as { platformMessage?: string; platformCode?: string } | null;
    if (!details?.platformMessage) return null;
    return details.platformCode ? `${details.platformMessage} (${details.platformCode})` : details.platformMessage;
  }

  /** Per-field messages of a 400 `validation_failed` answer. */
  get fields(): FieldErrors {
    const details = this.details as { fields?: FieldErrors } | null;
    return details?.fields ?? {};
  }
}

/** Raised when an embedded session can no longer be renewed from the URL. */
export const SESSION_EXPIRED = 'session_expired';

export interface UserView {
  id: string;
  email: string;
}

export interface Session {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  user: UserView;
  account: { id: string; name: string };
}

export interface Me {
  account: { id: string; name: string; billingSource: 'none' | 'wix' | 'stripe' };
  authMethod: 'password' | 'wixInstance';
  user: UserView | null;
  plan: { id: string; name: string; priceMonthlyCents: number; monthlyCredits: number };
  credits: { total: number; used: number; remaining: number; resetsOn: string };
}

export interface PlanInfo {
  id: string;
  name: string;
  priceMonthlyCents: number;
  monthlyCredits: number;
}

export type LedgerReason = 'monthly_grant' | 'plan_change' | 'reserve' | 'refund' | 'adjustment';

export interface LedgerEntry {
  id: string;
  delta: number;
  reason: LedgerReason;
  reference: string;
  createdAt: string;
}

export interface Billing {
  billingSource: 'none' | 'wix' | 'stripe';
  plan: PlanInfo;
  plans: PlanInfo[];
  credits: Me['credits'];
  periodEnd: string | null;
  cancelAtPeriodEnd: boolean;
  upgrade: { kind: 'wix' | 'stripe' | 'none'; url: string | null };
  history: { items: LedgerEntry[]; nextCursor: string | null };
}

export interface StoreView {
  id: string;
  platform: 'local' | 'wix' | 'woocommerce';
  name: string;
  currency: string;
  externalId: string;
  productCount: number;
  autoSync: boolean;
  syncedThrough: string | null;
  createdAt: string;
}

export interface SyncRequest {
  id: string;
  storeId: string;
  kind: 'full' | 'incremental' | 'single';
  trigger: 'manual' | 'schedule' | 'webhook' | 'connect';
  productExternalId: string | null;
  status: 'pending' | 'running' | 'done' | 'failed';
  attempts: number;
  createdAt: string;
  finishedAt: string | null;
  batchId: string | null;
  error: string | null;
}

export interface SyncStatus {
  autoSync: boolean;
  syncedThrough: string | null;
  active: SyncRequest[];
  last: SyncBatch | null;
  productCount: number;
}

export interface ImportReport {
  format: 'woocommerce' | 'shopify';
  imported: number;
  created: number;
  updated: number;
  unchanged: number;
  rejected: { line: number; reason: string }[];
}

export interface SyncBatch {
  id: string;
  trigger: 'manual' | 'schedule' | 'webhook' | 'connect';
  kind: 'full' | 'incremental' | 'single';
  succeeded: boolean;
  fetched: number;
  created: number;
  updated: number;
  unchanged: number;
  deleted: number;
  error: string | null;
  startedAt: string;
  durationMs: number;
}

export interface ProductSummary {
  id: string;
  storeId: string;
  externalId: string;
  title: string;
  sku: string | null;
  price: string | null;
  currency: string;
  availability: 'in_stock' | 'out_of_stock' | 'preorder';
  published: boolean;
  imageUrl: string | null;
  variantCount: number;
  updatedAt: string;
}

export interface ProductPage {
  items: ProductSummary[];
  nextCursor: string | null;
  total: number;
}

export interface CollectionView {
  id: string;
  storeId: string;
  name: string;
  path: string;
  productCount: number;
}

export interface SourceProduct {
  externalId: string;
  title: string;
  descriptionHtml: string;
  shortDescription: string;
  seoTitle?: string;
  seoDescription?: string;
  sku?: string;
  gtin?: string;
  brand?: string;
  price?: string;
  salePrice?: string;
  currency: string;
  availability: ProductSummary['availability'];
  stock?: number;
  categories: string[];
  tags: string[];
  images: { url: string; alt?: string }[];
  attributes: { name: string; values: string[] }[];
  variants: {
    externalId: string;
    sku?: string;
    title: string;
    options: { name: string; value: string }[];
    price?: string;
    salePrice?: string;
    stock?: number;
    availability: ProductSummary['availability'];
  }[];
  published: boolean;
}

export interface ProductDetail {
  id: string;
  storeId: string;
  revision: number;
  updatedAt: string;
  collections: CollectionView[];
  source: SourceProduct;
}

export interface ProductFilters {
  storeId?: string;
  q?: string;
  collectionId?: string;
  cursor?: string;
  limit?: number;
}

export type AttributeId = 'title' | 'description' | 'seo_title' | 'seo_description' | 'info_sections';

export interface OptimizerOptions {
  provider: string;
  canTranslate: boolean;
  attributes: { id: AttributeId; label: string }[];
  languages: { code: string; name: string }[];
  creditsPerItem: number;
  maxProductsPerJob: number;
}

export type JobStatus = 'pending' | 'running' | 'done' | 'failed' | 'canceled';
export type ItemStatus = JobStatus;
export type SourceScope = 'products' | 'collections';

export interface JobCounts {
  total: number;
  pending: number;
  running: number;
  done: number;
  failed: number;
  canceled: number;
}

export interface Job {
  id: string;
  storeId: string;
  storeName: string;
  kind: 'text';
  status: JobStatus;
  sourceScope: SourceScope;
  attributes: AttributeId[];
  targetLang: string | null;
  userPrompt: string | null;
  brandVoice: string | null;
  provider: string;
  productCount: number;
  counts: JobCounts;
  percent: number;
  credits: { reserved: number; charged: number; refunded: number };
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface NewJob {
  sourceScope: SourceScope;
  sourceIds: string[];
  storeId?: string;
  attributes: AttributeId[];
  targetLang: string | null;
  userPrompt?: string;
  brandVoice?: string;
}

export interface InfoSection {
  title: string;
  html: string;
}

/** A text (HTML for descriptions) or, for info sections, a list of sections. */
export type ContentValue = string | InfoSection[];

export interface JobItem {
  id: string;
  jobId: string;
  productId: string;
  productTitle: string;
  attribute: AttributeId;
  status: ItemStatus;
  attempts: number;
  before: ContentValue | null;
  after: ContentValue | null;
  error: { code: string; message: string } | null;
  publishedAt: string | null;
  revertedAt: string | null;
  updatedAt: string;
}

export interface Paged<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PublishResult {
  itemId: string;
  outcome: 'published' | 'reverted' | 'unchanged' | 'conflict' | 'error';
  status: number;
  error: { code: string; message: string } | null;
  current?: ContentValue | null;
}

/** The credits a refused job needed and had, from a 402 `insufficient_credits`. */
export function creditShortfall(error: ApiError): { required: number; remaining: number } | null {
  if (error.status !== 402) return null;
  const details = error.details as { required?: number; remaining?: number } | null;
  if (typeof details?.required !== 'number' || typeof details?.remaining !== 'number') return null;
  return { required: details.required, remaining: details.remaining };
}

interface RequestOptions {
  body?: unknown;
  /** Sent as-is with this content type instead of JSON. */
  raw?: { data: BodyInit; contentType: string };
  authenticated?: boolean;
  /** Return the response body as a Blob (downloads). */
  blob?: boolean;
}

async function toApiError(response: Response): Promise<ApiError> {
  try {
    const body = await response.json();
    const error = body?.error ?? {};
    return new ApiError(
      response.status,
      String(error.code ?? 'unknown'),
      String(error.message ?? response.statusText),
      error.details ?? null,
    );
  } catch {
    return new ApiError(response.status, 'unknown', `The server answered ${response.status}.`);
  }
}

function authorization(): string | null {
  const instance = wixInstance();
  if (instance) return `WixInstance ${instance}`;
  const token = getAccessToken();
  return token ? `Bearer ${token}` : null;
}

let refreshing: Promise<boolean> | null = null;

/** Renews the standalone session once, however many requests ask at the same time. */
function refreshSession(): Promise<boolean> {
  if (!refreshing) {
    refreshing = (async () => {
      const refreshToken = getRefreshToken();
      if (!refreshToken) return false;
      const response = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refreshToken }),
      });
      if (!response.ok) {
        clearTokens();
        return false;
      }
      const session = (await response.json()) as Session;
      saveTokens(session.accessToken, session.refreshToken);
      return true;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** After a 401: can the request be retried with fresh credentials? */
async function renewCredentials(): Promise<boolean> {
  const stored = wixInstance();
  if (stored) {
    const fresh = instanceFromUrl();
    if (fresh && fresh !== stored) {
      setWixInstance(fresh);
      return true;
    }
    return false;
  }
  return refreshSession();
}

async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const { body, raw, authenticated = true } = options;
  const send = () => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (raw) headers['content-type'] = raw.contentType;
    const auth = authenticated ? authorization() : null;
    if (auth) headers.authorization = auth;
    return fetch(path, {
      method,
      headers,
      body: raw ? raw.data : body === undefined ? undefined : JSON.stringify(body),
    });
  };
  let response = await send();
  if (response.status === 401 && authenticated && (await renewCredentials())) {
    response = await send();
  }
  if (response.status === 401 && authenticated && wixInstance()) {
    const error = await toApiError(response);
    throw new ApiError(401, SESSION_EXPIRED, error.message, { cause: error.code });
  }
  if (!response.ok) throw await toApiError(response);
  if (response.status === 204) return undefined as T;
  if (options.blob) return (await response.blob()) as T;
  return (await response.json()) as T;
}

/** The address of the job event stream. EventSource cannot send headers, so the
 * credentials travel in the query (`access_token`, or `instance` when embedded in Wix). */
export function jobEventsUrl(jobId?: string): string {
  const instance = wixInstance();
  const token = instance ? null : getAccessToken();
  return `/api/jobs/events${queryString({ jobId, instance: instance ?? undefined, access_token: token ?? undefined })}`;
}

/** Renews the standalone access token (after the event stream was refused). */
export function renewSession(): Promise<boolean> {
  return renewCredentials();
}

function startSession(session: Session): Session {
  saveTokens(session.accessToken, session.refreshToken);
  return session;
}

function queryString(params: object): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const api = {
  me: () => request<Me>('GET', '/api/me'),
  billing: () => request<Billing>('GET', '/api/billing'),
  syncCredits: () => request<Billing>('POST', '/api/billing/sync-credits'),
  billingHistory: (cursor: string, limit = 20) =>
    request<{ items: LedgerEntry[]; nextCursor: string | null }>(
      'GET',
      `/api/billing/history${queryString({ cursor, limit })}`,
    ),
  checkout: (plan: string) => request<{ url: string }>('POST', '/api/billing/checkout', { body: { plan } }),
  billingPortal: () => request<{ url: string }>('POST', '/api/billing/portal'),
  stores: () => request<{ stores: StoreView[] }>('GET', '/api/stores'),
  createStore: (name: string, currency: string) =>
    request<StoreView>('POST', '/api/stores', { body: { platform: 'local', name, currency } }),
  deleteStore: (id: string) => request<void>('DELETE', `/api/stores/${id}`),
  connectWooCommerce: (url: string, consumerKey: string, consumerSecret: string, currency: string) =>
    request<StoreView>('POST', '/api/stores', {
      body: { platform: 'woocommerce', url, consumerKey, consumerSecret, currency },
    }),
  authorizeWooCommerce: (url: string, currency: string) =>
    request<{ authorizeUrl: string; expiresAt: string }>('POST', '/api/stores/woocommerce/authorize', {
      body: { url, currency },
    }),
  syncStore: (id: string) => request<SyncRequest>('POST', `/api/stores/${id}/sync`),
  syncStatus: (id: string) => request<SyncStatus>('GET', `/api/stores/${id}/sync`),
  setAutoSync: (id: string, autoSync: boolean) =>
    request<StoreView>('PATCH', `/api/stores/${id}`, { body: { autoSync } }),
  syncHistory: (id: string) => request<{ items: SyncBatch[] }>('GET', `/api/stores/${id}/syncs`),
  importCatalog: (id: string, file: Blob) =>
    request<ImportReport>('POST', `/api/stores/${id}/import`, { raw: { data: file, contentType: 'text/csv' } }),
  exportCatalog: (id: string) => request<Blob>('GET', `/api/stores/${id}/export`, { blob: true }),
  products: (filters: ProductFilters) => request<ProductPage>('GET', `/api/products${queryString(filters)}`),
  product: (id: string) => request<ProductDetail>('GET', `/api/products/${id}`),
  collections: (storeId?: string) =>
    request<{ items: CollectionView[] }>('GET', `/api/collections${queryString({ storeId })}`),
  optimizerOptions: () => request<OptimizerOptions>('GET', '/api/optimizer/options'),
  createJob: (job: NewJob) => request<Job>('POST', '/api/jobs', { body: job }),
  jobs: (filters: { status?: JobStatus[]; cursor?: string; limit?: number }) =>
    request<Paged<Job>>(
      'GET',
      `/api/jobs${queryString({ status: filters.status?.join(','), cursor: filters.cursor, limit: filters.limit })}`,
    ),
  job: (id: string) => request<Job>('GET', `/api/jobs/${id}`),
  jobItems: (id: string, filters: { status?: ItemStatus[]; cursor?: string; limit?: number } = {}) =>
    request<Paged<JobItem>>(
      'GET',
      `/api/jobs/${id}/items${queryString({ status: filters.status?.join(','), cursor: filters.cursor, limit: filters.limit })}`,
    ),
  cancelJob: (id: string) => request<Job>('POST', `/api/jobs/${id}/cancel`),
  retryJob: (id: string) => request<Job>('POST', `/api/jobs/${id}/retry`),
  publish: (itemIds: string[], force = false) =>
    request<{ results: PublishResult[] }>('POST', '/api/publish', { body: { itemIds, force } }),
  revert: (itemIds: string[], force = false) =>
    request<{ results: PublishResult[] }>('POST', '/api/revert', { body: { itemIds, force } }),
  register: async (email: string, password: string, accountName?: string) =>
    startSession(
      await request<Session>('POST', '/api/v1/auth/register', {
        body: { email, password, ...(accountName ? { accountName } : {}) },
        authenticated: false,
      }),
    ),
  login: async (email: string, password: string) =>
    startSession(
      await request<Session>('POST', '/api/v1/auth/login', {
        body: { email, password },
        authenticated: false,
      }),
    ),
  demoLogin: async (token: string) =>
    startSession(
      await request<Session>('POST', '/api/v1/auth/demo-login', {
        body: { token },
        authenticated: false,
      }),
    ),
  logout: async () => {
    const refreshToken = getRefreshToken();
    try {
      if (refreshToken) await request<void>('POST', '/api/v1/auth/logout', { body: { refreshToken } });
    } finally {
      clearTokens();
    }
  },
};
