import type { ReactNode } from 'react';
import { Box, Card, Heading, Text } from '@wix/design-system';
import './AuthCard.css';

/** The centered card every sign-in page uses. */
export function AuthCard({ title, subtitle, children }: { title: string; subtitle: string; children: ReactNode }) {
  return (
    <div className="uo-auth-page">
      <Box width="420px" maxWidth="100%" direction="vertical" gap="16px">
        <Box direction="vertical" align="center" gap="4px">
          <Heading size="medium" as="h1">
            Ultimate Optimizer
          </Heading>
          <Text secondary size="small">
            Better product catalogs with AI
          </Text>
        </Box>
        <Card>
          <Card.Header title={title} subtitle={subtitle} />
          <Card.Divider />
          <Card.Content>{children}</Card.Content>
        </Card>
      </Box>
    </div>
  );
}
