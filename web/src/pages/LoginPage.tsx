import { useState } from 'react';
import { Link as RouterLink, useNavigate } from 'react-router-dom';
import { Box, Button, Loader, SectionHelper, Text } from '@wix/design-system';
import { api } from '../api';
import { AuthCard } from '../components/AuthCard';
import { TextField, useSubmit } from '../components/forms';

export default function LoginPage() {
  const navigate = useNavigate();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const { busy, fields, formError, submit } = useSubmit(async () => {
    await api.login(email, password);
    navigate('/', { replace: true });
  });

  return (
    <AuthCard title="Sign in" subtitle="Use the email and password of your account.">
      <form onSubmit={submit} aria-label="Sign in" noValidate>
        <Box direction="vertical" gap="18px">
          {formError && (
            <SectionHelper appearance="danger" dataHook="login-error">
              {formError.message}
            </SectionHelper>
          )}
          <TextField id="login-email" label="Email" type="email" autocomplete="email"
            value={email} onChange={setEmail} error={fields.email} />
          <TextField id="login-password" label="Password" type="password" autocomplete="current-password"
            value={password} onChange={setPassword} error={fields.password} />
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
