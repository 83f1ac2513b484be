import { Box, Card, Heading, LinearProgressBar, Text } from '@wix/design-system';
import { useMe } from '../meContext';

function price(cents: number): string {
  return `$${(cents / 100).toFixed(2)} / month`;
}

function formatDate(iso: string): string {
  const date = new Date(`${iso}T00:00:00`);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleDateString(undefined, { year: 'numeric', month: 'long', day: 'numeric' });
}

export default function HomePage() {
  const { me } = useMe();
  const { plan, credits } = me;
  const usedPercent = credits.total > 0 ? Math.min(100, Math.round((credits.used / credits.total) * 100)) : 0;
  return (
    <Box direction="vertical" gap="24px">
      <Box direction="vertical" gap="4px">
        <Heading size="large" as="h2">
          Welcome to Ultimate Optimizer
        </Heading>
        <Text secondary>Your plan and credits at a glance.</Text>
      </Box>
      <Box gap="24px" className="uo-cards">
        <Box width="50%" direction="vertical">
          <Card dataHook="plan-card">
            <Card.Header title="Your plan" />
            <Card.Divider />
            <Card.Content>
              <Box direction="vertical" gap="6px">
                <Heading size="medium" as="h3" dataHook="plan-name">
                  {plan.name}
                </Heading>
                <Text>{price(plan.priceMonthlyCents)}</Text>
                <Text secondary size="small">
                  {plan.monthlyCredits.toLocaleString()} credits every month
                </Text>
              </Box>
            </Card.Content>
          </Card>
        </Box>
        <Box width="50%" direction="vertical">
          <Card dataHook="credits-card">
            <Card.Header title="Credits this month" />
            <Card.Divider />
            <Card.Content>
              <Box direction="vertical" gap="10px">
                <Box verticalAlign="bottom" gap="6px">
                  <Heading size="medium" as="h3" dataHook="credits-remaining">
                    {credits.remaining.toLocaleString()}
                  </Heading>
                  <Text secondary>remaining</Text>
                </Box>
                <LinearProgressBar
                  value={usedPercent}
                  skin={usedPercent >= 90 ? 'warning' : 'standard'}
                  aria-label={`${usedPercent}% of this month's credits used`}
                />
                <Text size="small" secondary>
                  {credits.used.toLocaleString()} used of {credits.total.toLocaleString()} · resets on{' '}
                  {formatDate(credits.resetsOn)}
                </Text>
              </Box>
            </Card.Content>
          </Card>
        </Box>
      </Box>
      <Card>
        <Card.Header title="What's next" />
        <Card.Divider />
        <Card.Content>
          <Text>
            Connect a store to bring in your products, then let the optimizer rewrite titles,
            descriptions and SEO fields in your brand voice. Each change waits for your review
            before it is published, and every published change can be reverted.
          </Text>
        </Card.Content>
      </Card>
    </Box>
  );
}
