import { useEffect, useRef, useState } from 'react';
import { Link as RouterLink, useNavigate } from 'react-router-dom';
import { Box, SectionHelper, Text } from '@wix/design-system';
import { ApiError, api } from '../api';
import { AuthCard } from '../components/AuthCard';
import { PageLoading } from '../components/PageLoading';

/** Opens the single-use link `serve --demo` prints. The token travels in the URL fragment,
 * which browsers never send to servers or put in access logs. */
export default function DemoLoginPage() {
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);
  const started = useRef(false);

  useEffect(() => {
    if (started.current) return;
    started.current = true;
    const token = new URLSearchParams(window.location.hash.slice(1)).get('token');
    window.history.replaceState(null, '', '/demo-login');
    if (!token) {
      setError('This login link is incomplete. Copy the whole link printed by the server.');
      return;
    }
    api
      .demoLogin(token)
      .then(() => navigate('/', { replace: true }))
      .catch((err) =>
        setError(err instanceof ApiError ? err.message : 'The server could not be reached.'),
      );
  }, [navigate]);

  if (!error) return <PageLoading />;
  return (
    <AuthCard title="Demo login" subtitle="One-click access to the demo store.">
      <Box direction="vertical" gap="12px">
        <SectionHelper appearance="danger" dataHook="demo-login-error">
          {error}
        </SectionHelper>
        <Text size="small">
          Restart the server with <code>make run</code> for a fresh link, or{' '}
          <RouterLink to="/login">sign in with a password</RouterLink>.
        </Text>
      </Box>
    </AuthCard>
  );
}
