import type { MessageInitShape } from '@bufbuild/protobuf';
import { BudgetPeriod, CapScope, type BudgetCapSchema } from '@switchyard/contracts';
import type { CapSpec } from '../domain/caps';

const PERIOD: Record<CapSpec['period'], BudgetPeriod> = {
  hour: BudgetPeriod.HOUR,
  day: BudgetPeriod.DAY,
  month: BudgetPeriod.MONTH,
};
const SCOPE: Record<CapSpec['scope'], CapScope> = {
  tenant: CapScope.TENANT,
  api_key: CapScope.API_KEY,
  feature: CapScope.FEATURE,
};

/** A cap as the contract names it (responses and budget events). */
export function capMessage(tenant: string, cap: CapSpec): MessageInitShape<typeof BudgetCapSchema> {
  return { scope: SCOPE[cap.scope], subject: cap.subject, period: PERIOD[cap.period], hard: cap.hard, tenant };
}
