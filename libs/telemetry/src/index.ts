export {
  injectTraceContext,
  extractTraceContext,
  withProducerSpan,
  withConsumerSpan,
  type MessagingSpanOptions,
} from './propagation';
