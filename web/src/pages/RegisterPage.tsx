import { useState } from 'react';
import { Link as RouterLink, useNavigate } from 'react-router-dom';
import { Box, Button, Loader, SectionHelper, Text } from '@wix/design-system';
import { api } from '../api';
import { AuthCard } from '../components/AuthCard';
import { TextField, useSubmit } from '../components/forms';

const LABELS: Record<string, string> = { email: 'Email', password: 'Password', accountName: 'Store name' };

export default function RegisterPage() {
  const navigate = useNavigate();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [accountName, setAccountName] = useState('');
  const { busy, fields, formError, submit } = useSubmit(async () => {
    await api.register(email, password, accountName.trim() || undefined);
    navigate('/', { replace: true });
  });
  const fieldSummary = Object.entries(fields)
    .map(([field, message]) => `${LABELS[field] ?? field} ${message}.`)
    .join(' ');

  return (
    <AuthCard title="Create your account" subtitle="Connect a WooCommerce or local catalog after signing up.">
      <form onSubmit={submit} aria-label="Create account" noValidate>
        <Box direction="vertical" gap="18px">
          {formError && (
            <SectionHelper appearance="danger" dataHook="register-error">
              {formError.message}
            </SectionHelper>
          )}
          <TextField id="register-email" label="Email" type="email" autocomplete="email"
            value={email} onChange={setEmail} error={fields.email} />
          <TextField id="register-password" label="Password" type="password" autocomplete="new-password"
            info="At least 10 characters." value={password} onChange={setPassword} error={fields.password} />
          <TextField id="register-account-name" label="Store name (optional)"
            value={accountName} onChange={setAccountName} error={fields.accountName} />
          {fieldSummary && (
            <SectionHelper appearance="danger" dataHook="register-field-errors">
              {fieldSummary}
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
