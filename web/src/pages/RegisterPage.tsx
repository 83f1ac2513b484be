import { useState, type FormEvent } from 'react';
import { Link as RouterLink, useNavigate } from 'react-router-dom';
import { Box, Button, FormField, Input, Loader, SectionHelper, Text } from '@wix/design-system';
import { ApiError, api } from '../api';
import { AuthCard } from '../components/AuthCard';

export default function RegisterPage() {
  const navigate = useNavigate();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [accountName, setAccountName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.register(email, password, accountName.trim() || undefined);
      navigate('/', { replace: true });
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'network', 'The server could not be reached.'));
    } finally {
      setBusy(false);
    }
  }

  const fields = error?.fields ?? {};
  return (
    <AuthCard title="Create your account" subtitle="Connect a WooCommerce or local catalog after signing up.">
      <form onSubmit={submit} aria-label="Create account" noValidate>
        <Box direction="vertical" gap="18px">
          {error && Object.keys(fields).length === 0 && (
            <SectionHelper appearance="danger" dataHook="register-error">
              {error.message}
            </SectionHelper>
          )}
          <FormField label="Email" labelPlacement="top" id="register-email">
            <Input
              id="register-email"
              ariaLabel="Email"
              type="email"
              autocomplete="email"
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              status={fields.email ? 'error' : undefined}
              statusMessage={fields.email}
            />
          </FormField>
          <FormField label="Password" labelPlacement="top" id="register-password" infoContent="At least 10 characters.">
            <Input
              id="register-password"
              ariaLabel="Password"
              type="password"
              autocomplete="new-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              status={fields.password ? 'error' : undefined}
              statusMessage={fields.password}
            />
          </FormField>
          <FormField label="Store name (optional)" labelPlacement="top" id="register-account-name">
            <Input
              id="register-account-name"
              ariaLabel="Store name"
              value={accountName}
              onChange={(e) => setAccountName(e.target.value)}
              status={fields.accountName ? 'error' : undefined}
              statusMessage={fields.accountName}
            />
          </FormField>
          {(fields.email || fields.password || fields.accountName) && (
            <SectionHelper appearance="danger" dataHook="register-field-errors">
              {Object.entries(fields)
                .map(([field, message]) => `${labelFor(field)} ${message}.`)
                .join(' ')}
            </SectionHelper>
          )}
          <Button type="submit" fullWidth disabled={busy} dataHook="register-submit">
            {busy ? <Loader size="tiny" /> : 'Create account'}
          </Button>
          <Text size="small" secondary>
            Already have an account? <RouterLink to="/login">Sign in</RouterLink>
          </Text>
        </Box>
      </form>
    </AuthCard>
  );
}

function labelFor(field: string): string {
  return { email: 'Email', password: 'Password', accountName: 'Store name' }[field] ?? field;
}
