// Where the dashboard keeps its credentials.
// Embedded in Wix: the signed instance from the iframe URL, kept for the browser session.
// Standalone: the access token for the tab session, the refresh token across restarts.

const INSTANCE_KEY = 'uo.wixInstance';
const ACCESS_KEY = 'uo.accessToken';
const REFRESH_KEY = 'uo.refreshToken';

function read(storage: Storage, key: string): string | null {
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

function write(storage: Storage, key: string, value: string | null): void {
  try {
    if (value === null) storage.removeItem(key);
    else storage.setItem(key, value);
  } catch {
    // Storage can be unavailable in some iframes; the in-memory copy still works.
  }
}

let accessToken: string | null = read(sessionStorage, ACCESS_KEY);

/** The instance in the current URL, if the page was opened by the Wix dashboard. */
export function instanceFromUrl(): string | null {
  const value = new URLSearchParams(window.location.search).get('instance');
  return value && value.includes('.') ? value : null;
}

/** Remembers the URL's instance (if any) and reports whether we run embedded in Wix. */
export function captureInstance(): boolean {
  const fromUrl = instanceFromUrl();
  if (fromUrl) write(sessionStorage, INSTANCE_KEY, fromUrl);
  return wixInstance() !== null;
}

export function wixInstance(): string | null {
  return read(sessionStorage, INSTANCE_KEY);
}

export function setWixInstance(instance: string): void {
  write(sessionStorage, INSTANCE_KEY, instance);
}

export function isEmbedded(): boolean {
  return wixInstance() !== null;
}

export function getAccessToken(): string | null {
  return accessToken;
}

export function getRefreshToken(): string | null {
  return read(localStorage, REFRESH_KEY);
}

export function saveTokens(access: string, refresh: string): void {
  accessToken = access;
  write(sessionStorage, ACCESS_KEY, access);
  write(localStorage, REFRESH_KEY, refresh);
}

export function clearTokens(): void {
  accessToken = null;
  write(sessionStorage, ACCESS_KEY, null);
  write(localStorage, REFRESH_KEY, null);
}

export function hasStandaloneSession(): boolean {
  return accessToken !== null || getRefreshToken() !== null;
}
