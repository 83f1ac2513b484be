import { Box, Loader } from '@wix/design-system';

export function PageLoading() {
  return (
    <Box height="60vh" align="center" verticalAlign="middle" role="status" aria-label="Loading">
      <Loader size="medium" />
    </Box>
  );
}
