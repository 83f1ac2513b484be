import { useEffect, useState } from 'react';
import { Link as RouterLink, useParams } from 'react-router-dom';
import { Badge, Box, Card, Heading, Loader, SectionHelper, Text } from '@wix/design-system';
import { api, type ProductDetail } from '../api';
import { asApiError } from '../components/forms';
import { AVAILABILITY_LABEL, formatPrice, sanitizeHtml } from '../components/format';
import './catalog.css';

export default function ProductPage() {
  const { id = '' } = useParams();
  const [product, setProduct] = useState<ProductDetail | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setProduct(null);
    setError(null);
    api.product(id).then(setProduct).catch((err) => setError(asApiError(err).message));
  }, [id]);

  if (error) {
    return (
      <Box direction="vertical" gap="12px">
        <RouterLink to="/products">← All products</RouterLink>
        <SectionHelper appearance="danger" dataHook="product-error">
          {error}
        </SectionHelper>
      </Box>
    );
  }
  if (!product) return <Loader size="medium" />;
  const source = product.source;
  return (
    <Box direction="vertical" gap="24px">
      <RouterLink to="/products">← All products</RouterLink>
      <Box gap="24px" verticalAlign="top">
        <Box direction="vertical" gap="12px" width="320px">
          {source.images[0] && <img className="uo-thumb-large" src={source.images[0].url} alt={source.images[0].alt ?? source.title} />}
          <div className="uo-gallery">
            {source.images.slice(1).map((image) => (
              <img key={image.url} src={image.url} alt={image.alt ?? ''} loading="lazy" />
            ))}
          </div>
        </Box>
        <Box direction="vertical" gap="12px" flex={1}>
          <Heading size="large" as="h2" dataHook="product-title">
            {source.title}
          </Heading>
          <Box gap="12px" verticalAlign="middle">
            <Text weight="bold">{displayPrice(product)}</Text>
            {source.salePrice && (
              <Text secondary size="small">
                <s>{formatPrice(source.price, source.currency)}</s>
              </Text>
            )}
            <Badge size="small" skin={source.availability === 'in_stock' ? 'success' : 'neutralLight'}>
              {AVAILABILITY_LABEL[source.availability]}
            </Badge>
          </Box>
          <Text size="small" secondary>
            {[source.sku && `SKU ${source.sku}`, source.gtin && `GTIN ${source.gtin}`, source.brand].filter(Boolean).join(' · ')}
          </Text>
          {product.collections.length > 0 && (
            <Text size="small">In {product.collections.map((c) => c.path).join(', ')}</Text>
          )}
        </Box>
      </Box>
      <Card>
        <Card.Header title="Description" subtitle={source.shortDescription || undefined} />
        <Card.Divider />
        <Card.Content>
          {source.descriptionHtml ? (
            <div className="uo-description" data-hook="product-description" dangerouslySetInnerHTML={{ __html: sanitizeHtml(source.descriptionHtml) }} />
          ) : (
            <Text secondary>No description yet.</Text>
          )}
        </Card.Content>
      </Card>
      <Card>
        <Card.Header title="Search engine listing" />
        <Card.Divider />
        <Card.Content>
          <Box direction="vertical" gap="6px">
            <Text weight="bold">{source.seoTitle ?? 'No SEO title — the product title is used.'}</Text>
            <Text secondary size="small">{source.seoDescription ?? 'No meta description yet.'}</Text>
          </Box>
        </Card.Content>
      </Card>
      {source.variants.length > 0 && (
        <Card>
          <Card.Header title={`Variants (${source.variants.length})`} />
          <Card.Divider />
          <Card.Content>
            <table className="uo-table" data-hook="variants-table">
              <thead>
                <tr>
                  <th>Variant</th>
                  <th>SKU</th>
                  <th>Price</th>
                  <th>Stock</th>
                </tr>
              </thead>
              <tbody>
                {source.variants.map((variant) => (
                  <tr key={variant.externalId}>
                    <td>{variant.options.map((o) => `${o.name}: ${o.value}`).join(', ') || variant.title}</td>
                    <td>{variant.sku ?? '—'}</td>
                    <td>{formatPrice(variant.salePrice ?? variant.price, source.currency)}</td>
                    <td>{variant.stock ?? AVAILABILITY_LABEL[variant.availability]}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Card.Content>
        </Card>
      )}
    </Box>
  );
}

/** The product's price, or "From" its cheapest variant for products priced per variant. */
function displayPrice(product: ProductDetail): string {
  const source = product.source;
  const own = source.salePrice ?? source.price;
  if (own) return formatPrice(own, source.currency);
  const prices = source.variants
    .map((variant) => Number(variant.salePrice ?? variant.price))
    .filter((price) => !Number.isNaN(price));
  if (prices.length === 0) return formatPrice(null, source.currency);
  return `From ${formatPrice(Math.min(...prices).toFixed(2), source.currency)}`;
}
