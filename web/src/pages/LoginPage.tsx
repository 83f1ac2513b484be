import { useState, type FormEvent } from 'react';
import { Link as RouterLink, useNavigate } from 'react-router-dom';
import { Box, Button, FormField, Input, Loader, SectionHelper, Text } from '@wix/design-system';
import { ApiError, api } from '../api';
import { AuthCard } from '../components/AuthCard';

export default function LoginPage() {
  const navigate = useNavigate();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.login(email, password);
      navigate('/', { replace: true });
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'network', 'The server could not be reached.'));
    } finally {
      setBusy(false);
    }
  }

  const fields = error?.fields ?? {};
  return (
    <AuthCard title="Sign in" subtitle="Use the email and password of your account.">
      <form onSubmit={submit} aria-label="Sign in" noValidate>
        <Box direction="vertical" gap="18px">
          {error && Object.keys(fields).length === 0 && (
            <SectionHelper appearance="danger" dataHook="login-error">
              {error.message}
            </SectionHelper>
          )}
          <FormField label="Email" labelPlacement="top" id="login-email">
            <Input
              id="login-email"
              ariaLabel="Email"
              type="email"
              autocomplete="email"
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              status={fields.email ? 'error' : undefined}
              statusMessage={fields.email}
            />
          </FormField>
          <FormField label="Password" labelPlacement="top" id="login-password">
            <Input
              id="login-password"
              ariaLabel="Password"
              type="password"
              autocomplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              status={fields.password ? 'error' : undefined}
              statusMessage={fields.password}
            />
          </FormField>
          <Button type="submit" fullWidth disabled={busy} dataHook="login-submit">
            {busy ? <Loader size="tiny" /> : 'Sign in'}
          </Button>
          <Text size="small" secondary>
            New here? <RouterLink to="/register">Create an account</RouterLink>
          </Text>
        </Box>
      </form>
    </AuthCard>
  );
}
