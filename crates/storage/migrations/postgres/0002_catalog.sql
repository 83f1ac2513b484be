-- The catalog cache: products read from each store (source layer), their collections
-- (WooCommerce categories, Wix collections/categories, local category paths) and membership.

ALTER TABLE stores ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD';

CREATE TABLE products (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    store_id       TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    external_id    TEXT NOT NULL,
    title          TEXT NOT NULL,
    sku            TEXT,
    price_minor    BIGINT,
    currency       TEXT NOT NULL,
    availability   TEXT NOT NULL,
    published      BOOLEAN NOT NULL,
    image_url      TEXT,
    variant_count  BIGINT NOT NULL,
    -- Lower-cased title, SKU, brand and categories: what product search matches.
    search_text    TEXT NOT NULL,
    -- The whole source record (JSON) and its SHA-256, so unchanged records are skipped.
    source         TEXT NOT NULL,
    checksum       TEXT NOT NULL,
    -- The platform's revision (Wix) or our own counter (local): writes must name it.
    revision       BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (store_id, external_id)
);
CREATE INDEX products_account_store ON products (account_id, store_id, id);

CREATE TABLE collections (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    store_id    TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    -- The platform's id; for category paths, the path itself ("Clothing > Tshirts").
    external_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    path        TEXT NOT NULL,
    UNIQUE (store_id, external_id)
);
CREATE INDEX collections_account ON collections (account_id, store_id);

CREATE TABLE product_collections (
    product_id    TEXT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    PRIMARY KEY (product_id, collection_id)
);
CREATE INDEX product_collections_collection ON product_collections (collection_id);
