import { useState } from 'react';
import { useNavigate } from 'react-router-dom';
import { Box, Button, Card, Heading, Loader, Text } from '@wix/design-system';
import { api } from '../api';
import { useMe } from '../meContext';

export default function AccountPage({ embedded }: { embedded: boolean }) {
  const { me } = useMe();
  const navigate = useNavigate();
  const [busy, setBusy] = useState(false);

  async function logout() {
    setBusy(true);
    try {
      await api.logout();
    } finally {
      navigate('/login', { replace: true });
    }
  }

  return (
    <Box direction="vertical" gap="24px">
      <Heading size="large" as="h2">
        Account
      </Heading>
      <Card>
        <Card.Header title={me.account.name} subtitle="Your account" />
        <Card.Divider />
        <Card.Content>
          <Box direction="vertical" gap="12px">
            {embedded || me.authMethod === 'wixInstance' ? (
              <Text dataHook="account-connection">Connected through Wix. Your Wix account signs you in.</Text>
            ) : (
              <>
                <Text dataHook="account-email">Signed in as {me.user?.email}</Text>
                <Box>
                  <Button priority="secondary" onClick={logout} disabled={busy} dataHook="logout">
                    {busy ? <Loader size="tiny" /> : 'Log out'}
                  </Button>
                </Box>
              </>
            )}
          </Box>
        </Card.Content>
      </Card>
    </Box>
  );
}
