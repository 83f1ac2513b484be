import { createContext, useContext } from 'react';
import type { Me } from './api';

export interface MeState {
  me: Me;
  reload: () => void;
}

export const MeContext = createContext<MeState | null>(null);

/** The signed-in account, loaded once by the app frame. */
export function useMe(): MeState {
  const state = useContext(MeContext);
  if (!state) throw new Error('useMe outside the app frame');
  return state;
}
